"""ROS 2 nodes of embodied_aif: thin rclpy adapters, one node per module, each with main()."""
