import { CfgdError, invalidField } from './errors.js';
import { validateName } from './names.js';
import { validateVersion } from './config.js';

/**
 * What one instance of an application (an agent beside it) last reported on
 * one config: the version it applied and runs now, and the version it last
 * failed to apply. cfgd keeps one per instance and config.
 */
export interface InstanceReport {
  readonly instanceId: string;
  /** The version applied and running; 0: none yet. */
  readonly appliedVersion: number;
  /** The version whose rendering or reload last failed; 0: the last attempt succeeded. */
  readonly failedVersion: number;
  /** Why `failedVersion` failed; empty without one. */
  readonly error: string;
  /** When the server received the report. */
  readonly reportedAt: Date;
  /** The principal that sent it. */
  readonly reportedBy: string;
}

/** The longest error an instance may report, in characters. */
export const MAX_REPORT_ERROR_LENGTH = 1024;

/** A report as the instance sends it, before the server stamps it. */
export interface ReportInput {
  readonly instanceId: unknown;
  readonly appliedVersion: number;
  readonly failedVersion: number;
  readonly error: string;
}

/**
 * Validates a report against the config's latest version (0 when it has
 * never been written): the instance id is a name, both versions are whole
 * numbers no later than the latest (an instance cannot have applied a
 * version that does not exist), and an error comes with a failed version.
 */
export function validateReport(
  input: ReportInput,
  latestVersion: number,
  reportedAt: Date,
  reportedBy: string,
): InstanceReport {
  const instanceId = validateName('instance_id', input.instanceId);
  for (const [field, version] of [
    ['applied_version', input.appliedVersion],
    ['failed_version', input.failedVersion],
  ] as const) {
    validateVersion(field, version);
    if (version > latestVersion) {
      throw new CfgdError(
        'invalid-argument',
        'REPORT_INVALID',
        `${field}: the config has no version ${version} (its latest is ${latestVersion})`,
        {
          metadata: { field, latest_version: String(latestVersion) },
          fieldViolations: [{ field, description: `is after the latest version ${latestVersion}` }],
        },
      );
    }
  }
  if (input.error.length > MAX_REPORT_ERROR_LENGTH) {
    throw invalidField(
      'error',
      'REPORT_INVALID',
      `must be at most ${MAX_REPORT_ERROR_LENGTH} characters, got ${input.error.length}`,
    );
  }
  if (input.error !== '' && input.failedVersion === 0) {
    throw invalidField('error', 'REPORT_INVALID', 'an error needs the failed_version it is about');
  }
  return {
    instanceId,
    appliedVersion: input.appliedVersion,
    failedVersion: input.failedVersion,
    error: input.error,
    reportedAt,
    reportedBy,
  };
}

/**
 * Whether an instance runs `latestVersion` and has not failed on it or
 * anything after what it applied.
 */
export function isConverged(report: InstanceReport, latestVersion: number): boolean {
  return report.appliedVersion === latestVersion && report.failedVersion <= report.appliedVersion;
}
