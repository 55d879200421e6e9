-- Like tests/lua/spin.lua, but the innermost function spends its time in
-- a C function (string.find with a backtracking pattern): the interpreter
-- writes L->base, the frame the OpenResty tapsets start their walk from,
-- only when Lua calls out, so a sample taken in C code sees the true frame
-- chain. Expected frames of a sample, innermost first:
--
--   string.find (C)   called from spin  at call:find
--   spin              defined at def:spin
--   third             line call:spin
--   second            line call:third
--   first             line call:second
--   main chunk        line call:first
io.stdout:write("ready\n")
io.stdout:flush()

local subject = string.rep("a", 3000)

local function spin() -- @def:spin
    while true do
        string.find(subject, "a*b") -- @call:find
    end
end

local function third() -- @def:third
    spin() -- @call:spin
end

local function second() -- @def:second
    third() -- @call:third
end

local function first() -- @def:first
    second() -- @call:second
end

first() -- @call:first
