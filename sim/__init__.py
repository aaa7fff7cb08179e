"""PyBullet simulation of the building, the mobile manipulator and its sensors (no ROS)."""
