import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { publicKeyFingerprint } from '../pool/credentials';

interface KeyPairFiles {
  privateKeyFile: string;
  publicKeyFile: string;
  /** `SHA256:<base64>`, as `DESC USER` shows it in RSA_PUBLIC_KEY_FP. */
  fingerprint: string;
  /** The public key's base64 body (no PEM lines), as `RSA_PUBLIC_KEY = '…'` takes it. */
  publicKeyBody: string;
}

/**
 * Writes an RSA 2048 key pair the way Snowflake's key-pair guide has users make it with openssl: the
 * private key as PKCS#8 PEM (`rsa_key.p8`, mode 0600; encrypted with AES-256-CBC when a passphrase is
 * given) and the public key as SPKI PEM (`rsa_key.pub`). Existing files are never overwritten.
 */
function writeKeyPair(dir: string, passphrase?: string): KeyPairFiles {
  const privateKeyFile = path.join(dir, 'rsa_key.p8');
  const publicKeyFile = path.join(dir, 'rsa_key.pub');
  for (const f of [privateKeyFile, publicKeyFile]) {
    if (existsSync(f)) throw new Error(`${f} exists; move it away or choose another --out (a key is never overwritten)`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privatePem = passphrase
    ? privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase })
    : privateKey.export({ format: 'pem', type: 'pkcs8' });
  const publicPem = publicKey.export({ format: 'pem', type: 'spki' }) as string;
  writeFileSync(privateKeyFile, privatePem, { mode: 0o600, flag: 'wx' });
  writeFileSync(publicKeyFile, publicPem, { mode: 0o644, flag: 'wx' });
  return {
    privateKeyFile,
    publicKeyFile,
    fingerprint: publicKeyFingerprint(createPublicKey(publicPem)),
    publicKeyBody: publicPem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, '').replace(/\s+/g, ''),
  };
}

/** A Snowflake identifier as ALTER USER needs it: bare when it is a plain name, else double-quoted. */
function identifier(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_$]*$/.test(name) ? name.toUpperCase() : `"${name.replace(/"/g, '""')}"`;
}

/** `fleet snowflake …`: helpers for connecting the fleet to a Snowflake account. */
export function snowflakeCommand(program: Command, username: () => string): void {
  const sf = program.command('snowflake').description('Connect the fleet to a Snowflake account.');
  sf.command('keygen')
    .description(
      "Write an RSA key pair for key-pair authentication (rsa_key.p8, rsa_key.pub) and print the ALTER USER statement that registers it, with the key's fingerprint.",
    )
    .option('--out <dir>', 'directory for the key files', '.')
    .option('--passphrase-file <file>', 'encrypt the private key with the passphrase in this file (then set SNOWFLAKE_PRIVATE_KEY_PASSPHRASE)')
    .option('--user <name>', 'the Snowflake user the statement names; default SNOWFLAKE_USERNAME')
    .option(
      '--slot <n>',
      '1 = RSA_PUBLIC_KEY, 2 = RSA_PUBLIC_KEY_2 (to rotate: register the new key in the free slot, deploy it, then UNSET the old one)',
      (v) => {
        if (v !== '1' && v !== '2') throw new InvalidArgumentError('must be 1 or 2');
        return Number(v);
      },
      1,
    )
    .action((opts: { out: string; passphraseFile?: string; user?: string; slot: number }) => {
      let passphrase: string | undefined;
      if (opts.passphraseFile) {
        passphrase = readFileSync(opts.passphraseFile, 'utf8').replace(/\r?\n$/, '');
        if (passphrase.length < 8) throw new Error(`--passphrase-file ${opts.passphraseFile}: the passphrase must be at least 8 characters`);
      }
      const keys = writeKeyPair(path.resolve(opts.out), passphrase);
      const user = identifier(opts.user ?? username());
      const slot = opts.slot === 2 ? 'RSA_PUBLIC_KEY_2' : 'RSA_PUBLIC_KEY';
      process.stdout.write(
        [
          `private key  ${keys.privateKeyFile}  (PKCS#8${passphrase ? ', encrypted' : ''}; keep it secret: a Kubernetes Secret, never git)`,
          `public key   ${keys.publicKeyFile}`,
          `fingerprint  ${keys.fingerprint}`,
          '',
          'Register the public key (a user with the SECURITYADMIN role, or the user itself):',
          '',
          `  ALTER USER ${user} SET ${slot}='${keys.publicKeyBody}';`,
          '',
          `Check: DESC USER ${user}; shows ${slot}_FP = ${keys.fingerprint}`,
          'Then run the fleet with:',
          '',
          `  SNOWFLAKE_AUTHENTICATOR=SNOWFLAKE_JWT SNOWFLAKE_PRIVATE_KEY_FILE=${keys.privateKeyFile}${passphrase ? ' SNOWFLAKE_PRIVATE_KEY_PASSPHRASE=…' : ''}`,
          '',
        ].join('\n'),
      );
    });
}
