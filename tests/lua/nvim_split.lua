-- nvim_split.lua: a Lua workload for a LuaJIT embedder, run inside neovim
--
--   nvim --headless -u NONE -i NONE -n -c 'luafile tests/lua/nvim_split.lua'
--
-- (with `-c 'lua jit.off()'` before it for the interpreter only). neovim
-- runs `:luafile` from C (loadfile, then lua_pcall), so the main chunk is
-- the bottom Lua frame. It uses nothing of neovim's API: every frame is
-- a Lua function of this file.
--
-- A chain of three functions leads to two leaves that run the same loop
-- body; heavy runs it three times as often per call as light, and round
-- calls each once, so about 75% of the samples fall in heavy and 25% in
-- light, interpreted or compiled (each leaf's loop becomes its own trace).
--
-- Prints "ready" on stdout when it starts, then runs until killed (a
-- neovim busy in Lua ignores SIGTERM: SIGKILL it).
--
-- Markers at the end of lines: "def:NAME" where NAME is defined, "hot:NAME"
-- where it spends its time, "call:NAME" where it is called.
--
-- Expected Lua backtraces, innermost first (lj-lua-stacks prints each
-- function by the line where it is defined, the main chunk as line 0):
--
--   75%:  heavy  (def:heavy)     25%:  light  (def:light)
--         round  (def:round)           round  (def:round)
--         run    (def:run)             run    (def:run)
--         main chunk                   main chunk

io.stdout:write("ready\n")
io.stdout:flush()

local N = 100000

local function heavy() -- @def:heavy
    local x = 0
    for i = 1, 3 * N do x = x + i % 7 end -- @hot:heavy
    return x
end

local function light() -- @def:light
    local x = 0
    for i = 1, N do x = x + i % 7 end -- @hot:light
    return x
end

local function round(sink) -- @def:round
    sink = sink + heavy() -- @call:heavy
    sink = sink + light() -- @call:light
    if sink > 1e15 then sink = 0 end
    return sink
end

local function run() -- @def:run
    local sink = 0
    while true do
        sink = round(sink) -- @call:round
    end
end

run() -- @call:run
