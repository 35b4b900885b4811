// Runs the graphql-http server audit (the GraphQL-over-HTTP specification's
// MUST, SHOULD and MAY checks) against a running server and prints one line
// per audit plus a summary line. Exits non-zero when any MUST or SHOULD audit
// fails, so CI and the Rust integration test can gate on it.
//
//   node scripts/audit/audit.mjs http://127.0.0.1:8080/graphql
import { auditServer } from 'graphql-http';

const url = process.argv[2] ?? process.env.GRAPHQL_URL;
if (!url) {
  console.error('usage: node audit.mjs <graphql url>');
  process.exit(2);
}

const results = await auditServer({ url });
const counts = { MUST: { ok: 0, fail: 0 }, SHOULD: { ok: 0, fail: 0 }, MAY: { ok: 0, fail: 0 } };
for (const result of results) {
  const level = result.name.split(' ', 1)[0];
  const ok = result.status === 'ok';
  counts[level][ok ? 'ok' : 'fail'] += 1;
  if (ok) {
    console.log(`ok    ${result.id} ${result.name}`);
  } else {
    let body = '';
    try {
      body = await result.response.text();
    } catch {
      body = '(body already read)';
    }
    console.log(`${result.status.padEnd(5)} ${result.id} ${result.name}: ${result.reason}`);
    console.log(`      status ${result.response.status} ${result.response.headers.get('content-type') ?? ''} ${body.slice(0, 300)}`);
  }
}

const summary = Object.entries(counts)
  .map(([level, c]) => `${level} ${c.ok}/${c.ok + c.fail} passed`)
  .join(', ');
const failing = counts.MUST.fail + counts.SHOULD.fail;
console.log(`graphql-http audit: ${summary}; ${counts.MUST.fail} MUST and ${counts.SHOULD.fail} SHOULD failures`);
process.exit(failing === 0 ? 0 : 1);
