// A gRPC backend whose grpc.health.v1 service is the npm package grpc-health-check (with
// @grpc/grpc-js): a health service no one here wrote, to check meshlet's health checks
// against. It also serves meshlet.test.Echo/Say like tests/integration/grpc_peers.py's
// backends ("NAME:" + request), so a test can see which backend answered.
//
// Usage: node health_backend.js NAME [SERVICE=STATUS ...]
//   prints "port N" once serving; then reads lines "set SERVICE STATUS" on stdin (SERVICE "-"
//   is the whole server, ""), answering "ok" once set. Serves until stdin closes or it is
//   killed. Every status starts as given (the whole server: SERVING unless said).
'use strict';

const grpc = require('@grpc/grpc-js');
const { HealthImplementation } = require('grpc-health-check');
const readline = require('readline');

const name = process.argv[2] || 'node';
const statuses = { '': 'SERVING' };
for (const arg of process.argv.slice(3)) {
  const [service, status] = arg.split('=');
  statuses[service === '-' ? '' : service] = status;
}
const health = new HealthImplementation(statuses);

const ident = (b) => b;
const echo = {
  Say: {
    path: '/meshlet.test.Echo/Say',
    requestStream: false,
    responseStream: false,
    requestSerialize: ident,
    requestDeserialize: ident,
    responseSerialize: ident,
    responseDeserialize: ident,
  },
};

const server = new grpc.Server();
health.addToServer(server);
server.addService(echo, {
  Say: (call, done) => done(null, Buffer.concat([Buffer.from(name + ':'), call.request])),
});
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.error(err.message);
    process.exit(1);
  }
  console.log(`port ${port}`);
});

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const [verb, service, status] = line.trim().split(/\s+/);
  if (verb === 'set') {
    health.setStatus(service === '-' ? '' : service, status);
    console.log('ok');
  }
}).on('close', () => process.exit(0));
