"""The departments' web console: server-rendered pages over the same services as the
console's JSON API (app/console), signed in with a session cookie."""
