import { pino } from 'pino';
import { RethinkDbStore } from '../../src/store/rethinkdb/rethinkdb-store.js';
import { freshDatabase, rethinkStoreConfig } from '../helpers/rethinkdb.js';
import { describeStoreContract } from './store-contract.js';

const db = freshDatabase('conformance');

describeStoreContract('rethinkdb', {
  shared: true,
  open: () => RethinkDbStore.open(rethinkStoreConfig(db), pino({ level: 'silent' })),
});
