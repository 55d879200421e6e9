-- deep.lua: a call chain of a given depth, then spinning forever (for
-- measuring the cost of walking the Lua stack per sample).
--
--   luajit -joff tests/lua/deep.lua DEPTH
--
-- DEPTH (default 30) is the number of Lua frames of the backtrace: the
-- spinning function, DEPTH - 2 levels of descend, and the main chunk.
-- Prints "ready" when the script starts, then runs until killed.

io.stdout:write("ready\n")
io.stdout:flush()

local depth = tonumber(arg and arg[1]) or 30

local function spin() -- @def:spin
    local n = 0
    while true do n = n + 1 end -- @hot:spin
end

local function descend(level) -- @def:descend
    if level > 1 then
        descend(level - 1) -- @call:descend
    else
        spin() -- @call:spin
    end
end

if depth > 2 then
    descend(depth - 2) -- @call:descend0
else
    spin()
end
