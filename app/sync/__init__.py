"""One sync call on app open (issue 24 item 2): what changed for a resident since a
cursor, across reports, notifications, dossiers and the health book."""
