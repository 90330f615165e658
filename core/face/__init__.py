"""The face model: FACS names, linear model, camera, fitting (paper Eqs. 3-4) and rendering."""
