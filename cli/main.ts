import { processIo } from './io.js';
import { run } from './run.js';

// The binary: run with the real process's streams, and exit with the code run() chose.
run(process.argv.slice(2), processIo()).then((code) => {
  process.exitCode = code;
});
