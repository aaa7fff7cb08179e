"""The science of embodied_aif: pure numpy/torch models, free of ROS imports."""
