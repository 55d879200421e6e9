-- recurse.lua: recursion 50 calls deep, then spinning forever.
--
-- Prints "ready" when the script starts, then runs until killed.
--
-- Markers at the end of lines: "def:NAME" where NAME is defined, "hot:NAME"
-- where it spends its time, "call:NAME" where it is called (no tail calls,
-- so every level keeps its frame).
--
-- Expected Lua backtrace of every sample with -joff, innermost first
-- (52 Lua frames):
--
--   spin        line hot:spin         defined at def:spin
--   descend     line call:spin        defined at def:descend   (depth 1)
--   descend     line call:descend     defined at def:descend   (depths 2..50:
--   ...                                                         49 frames)
--   main chunk  line call:descend50

io.stdout:write("ready\n")
io.stdout:flush()

local DEPTH = 50

local function spin() -- @def:spin
    local n = 0
    while true do n = n + 1 end -- @hot:spin
end

local function descend(depth) -- @def:descend
    if depth > 1 then
        descend(depth - 1) -- @call:descend
    else
        spin() -- @call:spin
    end
end

descend(DEPTH) -- @call:descend50
