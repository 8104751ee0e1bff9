#!/usr/bin/env node
// The installed entry point: the compiled CLI does the work; this file only exists so `bin` points at a stable path.
import '../dist/cli/main.js';
