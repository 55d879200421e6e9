//! Debian 12's own binary packages that tests run as users have them
//! (stripped, no debug package), unpacked with [`super::apt::binary`].

/// `luajit` (upstream LuaJIT 2.1, the VM linked into `/usr/bin/luajit`).
pub const LUAJIT: &str = "2.1.0~beta3+git20220320+dfsg-4.1+deb12u1";
/// `libluajit2-5.1-2` (OpenResty's LuaJIT, what `libnginx-mod-http-lua` runs on).
pub const LIBLUAJIT2: &str = "2.1-20230119-1";
/// `liblua5.1-0` (PUC Lua 5.1: the same C API, not LuaJIT).
pub const LIBLUA51: &str = "5.1.5-9";
/// `nginx` (the executable, `/usr/sbin/nginx`): the main archive's, the
/// version of the source package our `-g` builds are made of
/// (`super::nginx::NGINX`, so those are the oracle of the same source);
/// the security archive drops a version when it publishes the next. Its
/// modules' (`libnginx-mod-http-lua`, `-ndk`) are those of our builds'
/// sources too, `super::nginx::LUA_MODULE` and `NDK`.
pub const NGINX: &str = super::nginx::NGINX;
