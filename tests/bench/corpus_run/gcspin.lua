-- A LuaJIT target whose GC heap size is known: it reports
-- collectgarbage("count") in bytes, then spins in a loop that allocates
-- nothing, so the heap stays at that size (plus the few bytes of the
-- report line itself) for as long as it runs.
local bytes = math.floor(collectgarbage("count") * 1024)
io.stdout:write("ready ", bytes, "\n")
io.stdout:flush()
local n = 0
while true do n = n + 1 end
