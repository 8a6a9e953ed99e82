import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import type {
  GetSchemaRequest,
  GetSchemaResponse,
  SchemaHistoryRequest,
  SchemaHistoryResponse,
  SetSchemaRequest,
  SetSchemaResponse,
} from '../../generated/cfgd/v1/config_service.js';
import { statusDetails, type TestClient } from './client.js';
import type { HttpResponse } from './http.js';

/** SetSchema with promises, on the TestClient's connection. */
export function setSchema(client: TestClient, request: Partial<SetSchemaRequest>): Promise<SetSchemaResponse> {
  return new Promise((resolve, reject) =>
    client.raw.setSchema(
      {
        userId: '',
        configName: '',
        schema: undefined,
        migrationValues: undefined,
        validateOnly: false,
        ...request,
      },
      (error, response) => (error ? reject(error) : resolve(response)),
    ),
  );
}

export function getSchema(client: TestClient, request: Partial<GetSchemaRequest>): Promise<GetSchemaResponse> {
  return new Promise((resolve, reject) =>
    client.raw.getSchema({ userId: '', configName: '', schemaVersion: 0, ...request }, (error, response) =>
      error ? reject(error) : resolve(response),
    ),
  );
}

export function schemaHistory(
  client: TestClient,
  request: Partial<SchemaHistoryRequest>,
): Promise<SchemaHistoryResponse> {
  return new Promise((resolve, reject) =>
    client.raw.schemaHistory(
      { userId: '', configName: '', startSchemaVersion: 0, pageSize: 0, pageToken: '', ...request },
      (error, response) => (error ? reject(error) : resolve(response)),
    ),
  );
}

/** A refused call, the same shape from gRPC (status details trailer) and REST (JSON error body). */
export interface Refusal {
  /** The gRPC status name (`INVALID_ARGUMENT` …). */
  readonly status: string;
  /** REST only: the HTTP status code. */
  readonly httpStatus?: number;
  readonly message: string;
  readonly reason: string | undefined;
  readonly metadata: Record<string, string>;
  /** The BadRequest's field violations, in the order sent. */
  readonly fields: readonly { readonly field: string; readonly description: string }[];
}

export function grpcRefusal(error: ServiceError): Refusal {
  const { errorInfo, badRequest } = statusDetails(error);
  return {
    status: GrpcStatus[error.code] ?? String(error.code),
    message: error.details,
    reason: errorInfo?.reason,
    metadata: errorInfo?.metadata ?? {},
    fields: (badRequest?.fieldViolations ?? []).map(({ field, description }) => ({ field, description })),
  };
}

/** The JSON error body of a REST answer; fails if the answer is a success or has no such body. */
export function restRefusal(res: HttpResponse): Refusal {
  if (res.status < 400) throw new Error(`expected an error, got HTTP ${res.status}: ${res.text}`);
  const error = res.json?.error;
  if (error === undefined) throw new Error(`HTTP ${res.status} without a JSON error body: ${res.text}`);
  const info = error.details?.find((d: any) => d['@type'] === 'type.googleapis.com/google.rpc.ErrorInfo');
  const bad = error.details?.find((d: any) => d['@type'] === 'type.googleapis.com/google.rpc.BadRequest');
  return {
    status: error.status,
    httpStatus: res.status,
    message: error.message,
    reason: info?.reason,
    metadata: info?.metadata ?? {},
    fields: (bad?.field_violations ?? []).map((v: any) => ({ field: v.field, description: v.description })),
  };
}

/** The fields of a refusal's violations, sorted (ajv's order is not part of the contract). */
export function fieldsOf(refusal: Refusal): string[] {
  return refusal.fields.map((v) => v.field).sort();
}
