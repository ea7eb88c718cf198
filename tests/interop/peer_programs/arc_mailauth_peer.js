'use strict';
// mailauth (npm) driven for the ARC interop tests (tests/interop/test_arc_interop.py).
//
//   node arc_mailauth_peer.js --dns 127.0.0.1:PORT
//
// Reads jobs from standard input, one per line, fields separated by TABs, and
// answers each with exactly one line on standard output:
//
//   verify INFILE
//       -> "RESULT<TAB>detail": mailauth's ARC chain validation (pass, fail, none)
//   seal ALG KEYFILE DOMAIN SELECTOR SRVID ARRIVAL SEALFILE OUTFILE
//       -> "ok<TAB>CV" (ALG: rsa-sha256 or ed25519-sha256; OUTFILE holds the new ARC set, CRLF-terminated, then
//          the message of SEALFILE) or "skip<TAB>why" (mailauth would not seal)
//          or "error<TAB>why".  The chain is validated on ARRIVAL (the message
//          as it arrived); SEALFILE is what is sealed (ARRIVAL changed by a
//          mailing list, or ARRIVAL itself), as authenticate() does it
//          without SPF.
//
// Keys are looked up with node's DNS resolver aimed only at the --dns server.

const fs = require('fs');
const readline = require('readline');
const { Resolver } = require('node:dns').promises;
const { dkimVerify } = require('mailauth/lib/dkim/verify');
const { arc, createSeal } = require('mailauth/lib/arc');

const args = process.argv.slice(2);
const dnsAt = args.indexOf('--dns');
if (dnsAt < 0 || !args[dnsAt + 1]) {
    process.stderr.write('usage: arc_mailauth_peer.js --dns IP:PORT\n');
    process.exit(2);
}
const dns = new Resolver({ timeout: 2000, tries: 1 });
dns.setServers([args[dnsAt + 1]]);

async function resolver(name, type) {
    if (type !== 'TXT') {
        const err = new Error(`no ${type} lookups here`);
        err.code = 'ENOTFOUND';
        throw err;
    }
    return dns.resolveTxt(name);
}

async function validate(message, seal) {
    const dkimResult = await dkimVerify(message, { resolver, seal });
    const arcResult = await arc(dkimResult.arc, { resolver });
    return { dkimResult, arcResult };
}

async function verifyJob(infile) {
    const { arcResult } = await validate(fs.readFileSync(infile));
    const status = arcResult.status || {};
    return `${status.result || 'none'}\t${(status.comment || arcResult.info || '').replace(/[\t\r\n]+/g, ' ')}`;
}

async function sealJob(algorithm, keyfile, domain, selector, srvId, arrival, sealfile, outfile) {
    const seal = { signingDomain: domain, selector, privateKey: fs.readFileSync(keyfile, 'utf8'), algorithm };
    const { arcResult } = await validate(fs.readFileSync(arrival));
    const cv = arcResult.status.result;
    if (!['none', 'pass'].includes(cv) && !arcResult.status.shouldSeal) {
        return `skip\tmailauth does not seal a chain that validated ${cv}`;
    }
    const message = fs.readFileSync(sealfile);
    const { dkimResult } = await validate(message, seal);
    const authResults = `${srvId};\r\n arc=${cv}`;
    const result = await createSeal(false, {
        headers: dkimResult.headers,
        arc: dkimResult.arc,
        seal: Object.assign({ i: (arcResult.i || 0) + 1, cv, authResults, signTime: new Date() }, dkimResult.seal)
    });
    const fields = result.headers.map(h => h.replace(/\r?\n/g, '\r\n') + '\r\n').join('');
    fs.writeFileSync(outfile, Buffer.concat([Buffer.from(fields), message]));
    return `ok\t${cv}`;
}

async function main() {
    const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
    for await (const line of rl) {
        if (!line) {
            continue;
        }
        const [job, ...rest] = line.split('\t');
        let answer;
        try {
            if (job === 'verify' && rest.length === 1) {
                answer = await verifyJob(...rest);
            } else if (job === 'seal' && rest.length === 8) {
                answer = await sealJob(...rest);
            } else {
                throw new Error(`bad job: ${job} with ${rest.length} arguments`);
            }
        } catch (err) {
            answer = `error\t${String(err && err.stack ? err.message : err).replace(/[\t\r\n]+/g, ' ')}`;
        }
        process.stdout.write(answer + '\n');
    }
}

main().catch(err => {
    process.stderr.write(String(err && err.stack) + '\n');
    process.exit(1);
});
