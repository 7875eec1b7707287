// Runs kinesalite on loopback, speaking HTTP/1.1 and cleartext HTTP/2 on one port.
// Arguments: the module's path (resolved by kinesalite.ts), the port, the options as JSON.
//
// Why not its command line: that listens on every interface. Why HTTP/2 too: @aws-sdk/client-kinesis
// sends every call over HTTP/2 (for SubscribeToShard), and kinesalite speaks only HTTP/1.1, so a client
// built as for AWS fails with "ERR_HTTP2_ERROR: Protocol error". The first bytes of a connection tell
// the two apart (an HTTP/2 client opens with its preface), and both go to kinesalite's one handler.
import { createServer as createHttp2Server } from 'node:http2';
import { createRequire } from 'node:module';
import { createServer as createTcpServer } from 'node:net';

const HTTP2_PREFACE = 'PRI * HTTP/2.0';

const [modulePath, port, options] = process.argv.slice(2);
const kinesalite = createRequire(import.meta.url)(modulePath);
const http1 = kinesalite(JSON.parse(options));
const [handler] = http1.listeners('request');
const http2 = createHttp2Server(handler);

const server = createTcpServer((socket) => {
  socket.once('data', (head) => {
    socket.pause();
    socket.unshift(head);
    const opening = head.toString('latin1', 0, HTTP2_PREFACE.length);
    (HTTP2_PREFACE.startsWith(opening) ? http2 : http1).emit('connection', socket);
    process.nextTick(() => socket.resume());
  });
});
server.listen(Number(port), '127.0.0.1', () => console.log(`kinesalite listening on 127.0.0.1:${port}`));
