/** Scheduled jobs: log and tombstone GC every hour. */
import { cronJobs } from 'convex/server';
import { internal } from './_generated/api.js';

const crons = cronJobs();

crons.interval('or3-sync garbage collection', { hours: 1 }, internal.gc.run, {});

export default crons;
