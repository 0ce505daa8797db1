// Runs inside a workspace's sandbox (bubblewrap), as its first process: with WORKSPACE_NETWORK=api it
// listens on the sandbox's own loopback at the port RUNYARD_API_URL names and relays each connection
// to the Unix socket the worker bound in (which reaches runyard's API and nothing else); then it runs
// the command with `sh -c` under the limits the worker set, and exits with its status. Plain
// CommonJS with Node's standard library only: it runs with the worker's node binary, read-only.
'use strict';
const net = require('node:net');
const { spawn } = require('node:child_process');

const [, , socketPath, port, limitScript, command] = process.argv;

function run() {
  const child = spawn('/bin/sh', ['-c', `${limitScript}\nexec /bin/sh -c "$1"`, 'sh', command], { stdio: 'inherit' });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (require('node:os').constants.signals[signal] ?? 9) : 1)));
  child.on('error', () => process.exit(127));
}

if (socketPath && socketPath !== '-') {
  const server = net.createServer((inbound) => {
    const outbound = net.connect(socketPath);
    inbound.pipe(outbound).pipe(inbound);
    const close = () => {
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', close);
    outbound.on('error', close);
  });
  server.listen(Number(port), '127.0.0.1', run);
  server.on('error', () => run());
} else {
  run();
}
