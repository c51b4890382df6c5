/* eslint-disable */
/**
 * Generated `api` utility.
 *
 * THIS CODE IS AUTOMATICALLY GENERATED.
 *
 * To regenerate, run `npx convex dev`.
 * @module
 */

import type {
  ApiFromModules,
  FilterApi,
  FunctionReference,
} from "convex/server";
import type * as crons from "../crons.js";
import type * as gc from "../gc.js";
import type * as lib_access from "../lib/access.js";
import type * as lib_budget from "../lib/budget.js";
import type * as lib_changes from "../lib/changes.js";
import type * as lib_config from "../lib/config.js";
import type * as lib_convexLimits from "../lib/convexLimits.js";
import type * as lib_counters from "../lib/counters.js";
import type * as lib_errors from "../lib/errors.js";
import type * as lib_push from "../lib/push.js";
import type * as lib_retention from "../lib/retention.js";
import type * as lib_scope from "../lib/scope.js";
import type * as lib_snapshot from "../lib/snapshot.js";
import type * as sync from "../sync.js";
import type * as workspaces from "../workspaces.js";

/**
 * A utility for referencing Convex functions in your app's API.
 *
 * Usage:
 * ```js
 * const myFunctionReference = api.myModule.myFunction;
 * ```
 */
declare const fullApi: ApiFromModules<{
  crons: typeof crons;
  gc: typeof gc;
  "lib/access": typeof lib_access;
  "lib/budget": typeof lib_budget;
  "lib/changes": typeof lib_changes;
  "lib/config": typeof lib_config;
  "lib/convexLimits": typeof lib_convexLimits;
  "lib/counters": typeof lib_counters;
  "lib/errors": typeof lib_errors;
  "lib/push": typeof lib_push;
  "lib/retention": typeof lib_retention;
  "lib/scope": typeof lib_scope;
  "lib/snapshot": typeof lib_snapshot;
  sync: typeof sync;
  workspaces: typeof workspaces;
}>;
export declare const api: FilterApi<
  typeof fullApi,
  FunctionReference<any, "public">
>;
export declare const internal: FilterApi<
  typeof fullApi,
  FunctionReference<any, "internal">
>;
