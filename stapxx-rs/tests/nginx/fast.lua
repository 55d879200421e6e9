-- The cheap handler of the nginx tests (content_by_lua_file): as many
-- requests per second as nginx can serve, for the request-counting scripts.
ngx.say("fast")
