"""Recipe of models/face_model.npz: built from ICT-FaceKit."""
