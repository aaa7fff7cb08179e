# The two commands of the README, plus the set-up step they both run first.
#   make demo   the main job: the whole stack in simulation, on defaults
#   make test   the test suite (lint, unit, node, system)
SHELL := /bin/bash
VENV := $(CURDIR)/.venv
ROS_ENV := ROS_LOG_DIR=$${ROS_LOG_DIR:-$(CURDIR)/ros_logs} \
	ROS_DOMAIN_ID=$${ROS_DOMAIN_ID:-$$(( $$$$ % 90 + 10 ))} \
	ROS_AUTOMATIC_DISCOVERY_RANGE=$${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST} \
	RMW_IMPLEMENTATION=rmw_fastrtps_cpp

.PHONY: setup test demo lint

setup:
	@bash scripts/setup.sh

test: setup
	@$(ROS_ENV) $(VENV)/bin/python -m pytest test -q $(PYTEST_ARGS)

lint: setup
	@$(VENV)/bin/ruff check .

demo: setup
	@$(ROS_ENV) $(VENV)/bin/embodied-aif demo $(DEMO_ARGS)
