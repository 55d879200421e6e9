-- forks.lua: a LuaJIT process that forks a child running the same program
-- (for tracing every process of an executable, including forks made while
-- the session runs).
--
-- Prints "ready", waits for a line on stdin, forks (through the FFI: the
-- child runs the same LuaJIT, a copy of this process), and then parent and
-- child spin until killed. The child is the parent's only child.

local ffi = require("ffi")
ffi.cdef("int fork(void);")

io.stdout:write("ready\n")
io.stdout:flush()
io.stdin:read("*l")

ffi.C.fork()
local n = 0
while true do n = n + 1 end
