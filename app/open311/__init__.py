"""Open311 GeoReport v2 (issue 21): the city's reports for third-party apps, read and write."""
