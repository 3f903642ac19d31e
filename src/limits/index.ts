// The limits module's public surface.
export { Limiter, type Admission, type BudgetSeed } from './limiter.js';
export { compilePolicy, PERIOD_HOURS, type CompiledPolicy } from './policy.js';
export { formatReset, retryAfter } from './headers.js';
export { type LimitError, type RejectReason } from './rejections.js';
export { SlidingWindow } from './window.js';
export { BudgetLedger, hourOf } from './budget.js';
