// Two signed healthCheck calls made by node-soap within one second, by one client or by two
// fresh ones; prints each answer's status or Fault code, one JSON line.
//   node node_same_second.js WSDL_URL KEY CERT one-client|fresh-clients
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const soap = require(path.join(__dirname, '..', '..', 'examples', 'node', 'node_modules', 'soap'));

async function signedClient(wsdl, key, cert) {
  const client = await soap.createClientAsync(wsdl);
  client.setSecurity(new soap.WSSecurityCert(key, cert, ''));
  return client;
}

async function ping(client) {
  try {
    const [answer] = await client.healthCheckAsync({ Level: 'PING' });
    return answer.Status;
  } catch (error) {
    return error?.root?.Envelope?.Body?.Fault?.detail?.EboxFault?.Code ?? error.message;
  }
}

// Wait for the start of the next second, so that both calls fall within the same one.
function nextSecond() {
  return new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000)));
}

// Both calls, signed within one second; tried again (new clients, a later second) should a busy
// machine have spread them over two.
async function main() {
  const [wsdl, keyFile, certFile, mode] = process.argv.slice(2);
  const key = fs.readFileSync(keyFile);
  const cert = fs.readFileSync(certFile);
  for (let attempt = 1; attempt <= 3; attempt += 1) {
    const first = await signedClient(wsdl, key, cert);
    const second = mode === 'one-client' ? first : await signedClient(wsdl, key, cert);
    await nextSecond();
    const started = Date.now();
    const answers = [await ping(first), await ping(second)];
    const sameSecond = Math.floor(started / 1000) === Math.floor(Date.now() / 1000);
    if (sameSecond || attempt === 3) {
      console.log(JSON.stringify({ answers, sameSecond }));
      return;
    }
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 2;
});
