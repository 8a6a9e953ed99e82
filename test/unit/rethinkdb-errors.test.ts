import { describe, expect, it } from 'vitest';
import { CfgdError } from '../../src/domain/index.js';
import { classifyError, DatabaseUnavailableError, DRIVER_ERRORS } from '../../src/store/rethinkdb/errors.js';

type Expected = 'failed' | 'indeterminate' | 'passed-on';

/** Builds a driver error the way the driver does (message, no query term). */
function driverError(name: string, message: string): Error {
  const classes = DRIVER_ERRORS as unknown as Record<string, new (message: string) => Error>;
  const Class = classes[name];
  if (Class === undefined) throw new Error(`the driver has no ${name}`);
  return new Class(message);
}

function outcome(error: unknown, sent: boolean): Expected {
  const classified = classifyError(error, 'a query', sent);
  if (classified instanceof DatabaseUnavailableError) {
    expect(classified.kind).toBe('unavailable');
    expect(classified.reason).toBe('DATABASE_UNAVAILABLE');
    expect(classified.message).toMatch(/^the database is unavailable: a query: /);
    expect(classified.cause).toBe(error);
    return classified.outcome;
  }
  expect(classified).toBe(error);
  return 'passed-on';
}

describe('RethinkDB driver errors', () => {
  // [class, message, outcome when the query was sent]
  const table: [string, string, Expected][] = [
    ['ReqlOpFailedError', 'Cannot perform write: primary replica for shard ["", +inf) not available', 'failed'],
    ['ReqlOpFailedError', 'Table `db.config_heads` is ambiguous; there are multiple tables with that name.', 'failed'],
    [
      'ReqlOpIndeterminateError',
      'The primary replica lost contact with the secondary replicas. The write may or may not have been performed.',
      'indeterminate',
    ],
    ['ReqlAvailabilityError', 'Some availability problem', 'indeterminate'],
    ['ReqlDriverError', 'Could not connect to 127.0.0.1:28015.\nconnect ECONNREFUSED 127.0.0.1:28015', 'indeterminate'],
    ['ReqlDriverError', 'Connection is closed.', 'indeterminate'],
    ['ReqlDriverError', 'Unexpected handshake state', 'failed'],
    ['ReqlAuthError', 'Wrong password', 'failed'],
    ['ReqlTimeoutError', 'Could not connect to 127.0.0.1:28015, operation timed out.', 'failed'],
    // The driver fails the queries in flight on a connection that closes with a plain runtime error.
    ['ReqlRuntimeError', 'Connection is closed.', 'indeterminate'],
    ['ReqlRuntimeError', 'Something else at run time', 'passed-on'],
    ['ReqlInternalError', 'Cannot perform read: no server is accessible for this table', 'indeterminate'],
    ['ReqlInternalError', 'Guarantee failed: [x]', 'passed-on'],
    ['ReqlQueryLogicError', 'Expected type OBJECT but found NULL.', 'passed-on'],
    ['ReqlNonExistenceError', 'No attribute `version` in object', 'passed-on'],
    ['ReqlResourceLimitError', 'Array over size limit `100000`.', 'passed-on'],
    ['ReqlUserError', 'r.error() was called', 'passed-on'],
    ['ReqlPermissionError', 'User `cfgd` does not have the required `write` permission', 'passed-on'],
    ['ReqlServerCompileError', 'Expected 2 arguments but found 1', 'passed-on'],
    ['ReqlDriverCompileError', 'Anonymous function returned `undefined`', 'passed-on'],
  ];

  it.each(table)('%s "%s" sent: %s', (name, message, expected) => {
    expect(outcome(driverError(name, message), true)).toBe(expected);
  });

  it.each(table.filter(([, , expected]) => expected !== 'passed-on'))(
    '%s "%s" before the query was sent: nothing was performed',
    (name, message) => {
      expect(outcome(driverError(name, message), false)).toBe('failed');
    },
  );

  it('recognises the indeterminate error by class, not by name (it is an availability error subclass)', () => {
    const error = driverError('ReqlOpIndeterminateError', 'The write may or may not have been performed.');
    Object.defineProperty(error, 'name', { value: 'SomethingElse' });
    expect(outcome(error, true)).toBe('indeterminate');
  });

  it('treats broken sockets outside the driver as connection trouble and passes other errors on', () => {
    expect(outcome(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), true)).toBe('indeterminate');
    expect(outcome(new Error('socket hang up'), false)).toBe('failed');
    expect(outcome(new TypeError('x is not a function'), true)).toBe('passed-on');
    const domain = new CfgdError('not-found', 'CONFIG_NOT_FOUND', 'gone');
    expect(classifyError(domain, 'a query', true)).toBe(domain);
  });
});
