"""Recipe of models/regressor.npz: Eq. 4 targets of annotated faces, their masks, the fern cascade."""
