#!/usr/bin/env node
// The installed entry point. It loads the CLI bundled into one file at build time: resolving and parsing dozens of
// modules would otherwise add ~60 ms to every `store` command, which people run in shell loops.
import '../dist/bundle/main.js';
