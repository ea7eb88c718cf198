'use strict';
// mailauth (npm) driven for the benchmarks; it has the loop mode of the peer
// programs only (it is not one of the interop tests' peers).
//
// Usage (NODE_PATH pointing at the node_modules that holds mailauth; the
// mailauth version is pinned in package.json beside this file):
//   node mailauth_peer.js loop OP ALG CANON DOMAIN SELECTOR KEYFILE TXTFILE MSGFILE OUTFILE
//                              HEADERS OVERSIGN MIN_TIME ROUNDS MAX_TIME
//
// The arguments and the protocol (one operation, "ready SECONDS", wait for
// "go", calibrate, "round N SECONDS" lines, "done") are those of the loop mode
// described at the top of opendkim_peer.c.  mailauth has no oversigning
// option: OVERSIGN is ignored, HEADERS becomes its headerList.
//
// No DNS: mailauth's verifier takes a resolver function; the one given here
// answers the key record's name with the record read from TXTFILE and nothing
// else, so no query is ever sent.

const fs = require('fs');
const readline = require('readline');
const { dkimSign } = require('mailauth/lib/dkim/sign');
const { dkimVerify } = require('mailauth/lib/dkim/verify');

const argv = process.argv.slice(3);
if (process.argv[2] !== 'loop' || argv.length !== 14) {
    process.stderr.write('usage: mailauth_peer.js loop OP ALG CANON DOMAIN SELECTOR KEYFILE TXTFILE MSGFILE OUTFILE ' +
        'HEADERS OVERSIGN MIN_TIME ROUNDS MAX_TIME\n');
    process.exit(2);
}
const [op, alg, canon, domain, selector, keyfile, txtfile, msgfile, outfile, headers] = argv;
const minTime = Number(argv[11]);
let rounds = Number(argv[12]);
const maxTime = Number(argv[13]);

const message = fs.readFileSync(msgfile);
const sign = op === 'sign';
const privateKey = sign ? fs.readFileSync(keyfile, 'utf8') : null;
const record = sign ? null : fs.readFileSync(txtfile, 'utf8').replace(/[\r\n]+$/, '');
const wanted = `${selector}._domainkey.${domain}`.toLowerCase();

function split255(s) {
    const out = [];
    for (let i = 0; i < s.length; i += 255) {
        out.push(s.slice(i, i + 255));
    }
    return out;
}

async function resolver(name, type) {
    if (String(name).replace(/\.$/, '').toLowerCase() === wanted && type === 'TXT') {
        return [split255(record)];
    }
    const err = new Error(`no record for ${name} ${type}`);
    err.code = 'ENOTFOUND';
    throw err;
}

const signOptions = {
    canonicalization: canon,
    signatureData: [{ signingDomain: domain, selector, privateKey, algorithm: alg, canonicalization: canon }]
};
if (headers && headers !== '-') {
    signOptions.headerList = headers.split(',').join(':');
}

let out = null;

async function one() {
    if (sign) {
        const res = await dkimSign(message, signOptions);
        if (res.errors && res.errors.length) {
            throw new Error('signing failed: ' + res.errors.map(e => String(e.err || e)).join('; '));
        }
        if (out !== null) {
            out.push(res.signatures.replace(/\r?\n/g, '\r\n'));
        }
    } else {
        const res = await dkimVerify(message, { resolver });
        const r = res.results && res.results[0];
        const status = r && r.status && r.status.result;
        if (status !== 'pass') {
            process.stderr.write(`verification did not pass: ${status} ${JSON.stringify(r && r.status)}\n`);
            process.exit(3);
        }
        if (out !== null) {
            out.push('pass\n');
        }
    }
}

function now() {
    return Number(process.hrtime.bigint()) / 1e9;
}

async function batch(n) {
    const t0 = now();
    for (let i = 0; i < n; i++) {
        await one();
    }
    return now() - t0;
}

function firstLine() {
    return new Promise(resolve => {
        const rl = readline.createInterface({ input: process.stdin });
        let done = false;
        rl.on('line', line => {
            if (!done) {
                done = true;
                rl.close();
                resolve(line);
            }
        });
        rl.on('close', () => {
            if (!done) {
                done = true;
                resolve(null);
            }
        });
    });
}

async function main() {
    out = [];
    const t0 = now();
    await one();
    const first = now() - t0;
    fs.writeFileSync(outfile, out.join(''));
    out = null;
    process.stdout.write(`ready ${first.toFixed(9)}\n`);
    const line = await firstLine();
    if (line === null || !line.startsWith('go')) {
        return;
    }
    let n = 1;
    let t = first;
    if (first < minTime) {
        for (;;) {
            t = await batch(n);
            if (t >= minTime / 4 || n >= 2 ** 30) {
                break;
            }
            n *= 2;
        }
        n = Math.max(1, Math.ceil((n * minTime) / (t > 0 ? t : 1e-9)));
        t = minTime;
    }
    if (rounds > 1 && t * rounds > maxTime) {
        rounds = Math.max(1, Math.floor(maxTime / (t > 0 ? t : 1e-9)));
    }
    const lines = [];
    for (let r = 0; r < rounds; r++) {
        const dt = await batch(n);
        lines.push(`round ${n} ${dt.toFixed(9)}\n`);
    }
    process.stdout.write(lines.join('') + 'done\n');
}

main().catch(err => {
    process.stderr.write(String((err && err.stack) || err) + '\n');
    process.exit(3);
});
