"""Stand-ins for services the tests cannot run for real, speaking their wire protocols."""
