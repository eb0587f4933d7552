// Runs Pusher's official Node server library against liverelay's ingest for the
// tests (package ingesttest). Reads a JSON list of calls on stdin, makes them in order and
// prints one JSON line per call: {"status": 200} or {"status": N, "body": "..."}.
"use strict";
const Pusher = require("pusher");

async function main() {
  let input = "";
  for await (const chunk of process.stdin) input += chunk;
  const calls = JSON.parse(input);
  const client = (secret) =>
    new Pusher({
      appId: process.env.INGEST_APP_ID,
      key: process.env.INGEST_KEY,
      secret: secret || process.env.INGEST_SECRET,
      host: process.env.INGEST_HOST,
      port: process.env.INGEST_PORT,
      useTLS: false,
    });
  for (const call of calls) {
    const pusher = client(call.secret);
    try {
      let res;
      if (call.batch) {
        res = await pusher.triggerBatch(call.batch);
      } else {
        res = await pusher.trigger(call.channels, call.event, call.data);
      }
      console.log(JSON.stringify({ status: res.status, body: await res.text() }));
    } catch (err) {
      console.log(JSON.stringify({ status: err.status || 0, body: String(err.body || err.message) }));
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
