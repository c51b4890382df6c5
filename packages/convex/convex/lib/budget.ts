/**
 * Accounting of what one function call reads, writes and answers, against
 * `TRANSACTION_BUDGET`. Convex fails a function that crosses its limits;
 * we stop before that with a clear code instead.
 */
import { getConvexSize, type Value } from 'convex/values';
import { TRANSACTION_BUDGET } from './convexLimits.js';

/** Which budget a step would cross. */
export type BudgetKind = keyof typeof TRANSACTION_BUDGET;

/** Spending so far, per kind. */
export class TransactionBudget {
  private readonly spent: Record<BudgetKind, number> = {
    bytesRead: 0,
    bytesWritten: 0,
    documentsRead: 0,
    documentsWritten: 0,
    answerBytes: 0,
  };

  constructor(private readonly limits: Record<BudgetKind, number> = TRANSACTION_BUDGET) {}

  /** Counts a document read (null reads cost nothing but the query). */
  read(document: object | null): void {
    if (document === null) return;
    this.spent.documentsRead += 1;
    this.spent.bytesRead += sizeOf(document);
  }

  /** Counts a document written. */
  write(document: object): void {
    this.spent.documentsWritten += 1;
    this.spent.bytesWritten += sizeOf(document);
  }

  /** Counts bytes of the function's answer. */
  answer(value: unknown): void {
    this.spent.answerBytes += sizeOf(value);
  }

  /** The first kind that is over its limit, or null. */
  exceeded(): BudgetKind | null {
    for (const kind of Object.keys(this.spent) as BudgetKind[]) {
      if (this.spent[kind] > this.limits[kind]) return kind;
    }
    return null;
  }

  /** Whether another read of about `bytes` still fits. */
  readFits(bytes: number): boolean {
    return (
      this.spent.bytesRead + bytes <= this.limits.bytesRead &&
      this.spent.documentsRead + 1 <= this.limits.documentsRead
    );
  }
}

/** Size of a value as Convex counts it. */
export function sizeOf(value: unknown): number {
  return value === undefined ? 0 : getConvexSize(value as Value);
}
