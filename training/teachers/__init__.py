"""Offline landmark teachers (dlib, MediaPipe) that label extra faces for the regressor's training set.

Training-only tools, each in its own venv (setup_envs.sh); never imported at run time.
"""
