-- coro.lua: the work happens inside a coroutine.
--
-- The main thread resumes the coroutine in a loop (through the function
-- coroutine.wrap returns); the coroutine computes, yields, and is resumed
-- again. While it computes, global_State.cur_L is the coroutine's
-- lua_State, not the main one that luajit.c's globalL points to.
--
-- Prints "ready" when the script starts, then runs until killed.
--
-- Markers at the end of lines: "def:NAME" where NAME is defined, "hot:NAME"
-- where it spends its time, "call:NAME" where it is called.
--
-- Expected Lua backtrace of nearly every sample with -joff, walking the
-- running coroutine (cur_L), innermost first:
--
--   crunch  line hot:crunch     defined at def:crunch
--   body    line call:crunch    defined at def:body   (the coroutine's base)
--
-- The main thread's stack meanwhile, innermost first: the wrap function
-- (builtin coroutine.wrap_aux, ffid 36 in luajit2 2.1-20230119), driver
-- (line call:co, defined at def:driver), the main chunk (line call:driver).

io.stdout:write("ready\n")
io.stdout:flush()

local function crunch() -- @def:crunch
    local x = 0
    for i = 1, 100000 do x = x + i % 3 end -- @hot:crunch
    return x
end

local function body() -- @def:body
    while true do
        local r = crunch() -- @call:crunch
        coroutine.yield(r)
    end
end

local co = coroutine.wrap(body)

local function driver() -- @def:driver
    while true do
        local r = co() -- @call:co
        assert(r)
    end
end

driver() -- @call:driver
