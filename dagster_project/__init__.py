"""The Dagster project: Definitions, resources, IO manager, partitions, jobs, sensors, schedules."""
