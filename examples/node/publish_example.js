#!/usr/bin/env node
// Publish one PDF to a citizen's eBox with node-soap, signed by its WSSecurityCert as it comes:
// no option besides the key, the certificate and the key's password.
//
//   npm ci      (once, in this folder)
//   node publish_example.js --url https://ebox.example --key backoffice-key.pem \
//       --cert backoffice-cert.pem --recipient 85073003328 --pdf letter.pdf --message-type TAX
//
// --registered sends it as registered mail (RegisteredMail v1) and prints the sealed evidence
// of acceptance. The WSDL is read from the URL. Prints the id eBox gives the message, or the
// Fault code and message (exit status 1).
//
// node-soap makes the same signed content for two requests built in the same second (its ids
// restart at _0, its Timestamp has whole seconds): eBox would answer the second with REPLAY.
// A program that publishes several documents reuses one client and leaves a second between
// two calls, or retries a REPLAY after a second (same Ticket + Sequence: it is safe).
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const soap = require('soap');

const OPTIONS = {
  url: { type: 'string' },
  key: { type: 'string' },
  'key-password': { type: 'string', default: '' },
  cert: { type: 'string' },
  recipient: { type: 'string' },
  pdf: { type: 'string' },
  'message-type': { type: 'string' },
  title: { type: 'string' },
  language: { type: 'string', default: 'nl' },
  ticket: { type: 'string' },
  sequence: { type: 'string' },
  'expiration-date': { type: 'string' },
  registered: { type: 'boolean', default: false },
};
const REQUIRED = ['url', 'key', 'cert', 'recipient', 'pdf', 'message-type'];

function readArguments() {
  const { values } = parseArgs({ options: OPTIONS, strict: true });
  const missing = REQUIRED.filter((name) => values[name] === undefined);
  if (missing.length > 0) {
    throw new Error(`missing ${missing.map((name) => `--${name}`).join(', ')}`);
  }
  return values;
}

// The fields of publishEboxMessage and sendRegisteredDocument, which are the same.
function messageFields(args, ticket) {
  const pdf = fs.readFileSync(args.pdf);
  const messageId = { Ticket: ticket };
  if (args.sequence !== undefined) messageId.Sequence = Number(args.sequence);
  const fields = {
    MessageID: messageId,
    Recipient: args.recipient,
    MessageType: args['message-type'],
    Language: args.language,
    Title: args.title ?? path.parse(args.pdf).name,
    Document: {
      DownloadFileName: path.basename(args.pdf),
      MediaType: 'application/pdf',
      Digest: {
        attributes: { Algorithm: 'SHA-256' },
        $value: crypto.createHash('sha256').update(pdf).digest('base64'),
      },
      Content: pdf.toString('base64'),
    },
  };
  if (args['expiration-date'] !== undefined) fields.ExpirationDate = args['expiration-date'];
  return fields;
}

async function makeClient(args, service) {
  const wsdl = `${args.url.replace(/\/+$/, '')}/soap/${service}/v1?wsdl`;
  const client = await soap.createClientAsync(wsdl);
  const key = fs.readFileSync(args.key);
  const cert = fs.readFileSync(args.cert);
  client.setSecurity(new soap.WSSecurityCert(key, cert, args['key-password']));
  return client;
}

// The business code and message of an eBox Fault, or null for any other error.
function eboxFault(error) {
  const fault = error?.root?.Envelope?.Body?.Fault;
  const detail = fault?.detail?.EboxFault;
  return detail ? { code: detail.Code, message: detail.Message } : null;
}

function printAnswer(answer, ticket) {
  console.log(`Published: EboxMessageId=${answer.EboxMessageId} ticket=${ticket}`);
  console.log(`Expires after: ${answer.ExpirationDate}`);
  console.log(`Citizen has activated the eBox: ${answer.CitizenActivated ? 'yes' : 'no'}`);
  const evidence = answer.SubmissionAcceptance;
  if (evidence) console.log(`Evidence: ${evidence.Type} ${evidence.EvidenceId} at ${evidence.Time}`);
}

async function main() {
  const args = readArguments();
  const service = args.registered ? 'RegisteredMail' : 'EboxMessage';
  const operation = args.registered ? 'sendRegisteredDocumentAsync' : 'publishEboxMessageAsync';
  const ticket = args.ticket ?? crypto.randomUUID().replaceAll('-', '').slice(0, 25);
  const client = await makeClient(args, service);
  try {
    const [answer] = await client[operation](messageFields(args, ticket));
    printAnswer(answer, ticket);
    return 0;
  } catch (error) {
    const fault = eboxFault(error);
    if (fault === null) throw error;
    console.error(`Refused: ${fault.code}: ${fault.message}`);
    return 1;
  }
}

main().then(
  (status) => {
    process.exitCode = status;
  },
  (error) => {
    console.error(`Error: ${error.message}`);
    process.exitCode = 2;
  },
);
