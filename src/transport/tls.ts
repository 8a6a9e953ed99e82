import { X509Certificate } from 'node:crypto';

/** Key material for serving TLS, read by the composition root from the files the settings name. */
export interface TlsMaterial {
  /** PEM certificate chain of the server. */
  readonly cert: Buffer;
  /** PEM private key of the server. */
  readonly key: Buffer;
  /** PEM CA certificates; when set, clients must present a certificate they signed (mTLS). */
  readonly clientCa?: Buffer | undefined;
}

/** A client certificate the TLS layer verified against `--tls-client-ca`. */
export interface ClientCertificate {
  /** The subject as `CN=…,O=…`, attributes in the certificate's order. */
  readonly subject: string;
  /** When it stops being valid (epoch ms). */
  readonly validTo: number;
}

/** The verified client certificate in DER form, as `ClientCertificate`. */
export function describeClientCertificate(der: Buffer): ClientCertificate {
  const certificate = new X509Certificate(der);
  return {
    subject: certificate.subject.split('\n').join(','),
    validTo: Date.parse(certificate.validTo),
  };
}
