"""Hot state in Redis: event status, the send ledger, the suppression index, key names, and every
Lua script (`lua/*.lua`, loaded and run through `lua_scripts`)."""
