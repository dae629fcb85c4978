/**
 * JSONata mappings compiled to synchronous JavaScript closures.
 *
 * jsonata 2 interprets its syntax tree with one `await` per node, which costs about 150 µs per
 * PHAROS report, most of the conversion time. `compileMapping` walks the same tree once, when
 * a format is loaded, and turns every node into a plain closure `(input, frame) => value` that
 * follows jsonata's own evaluator step by step: sequences (arrays flagged `sequence`, collapsed
 * to a singleton or to nothing as a node returns), path steps mapping and flattening over arrays,
 * predicates and `[n]` indexes, `#$i` / `@$v` tuple bindings, object constructors and group-by,
 * array constructors (a nested `[ ]` stays one value, a path result is spread), frames for
 * blocks and lambdas, tail calls, argument checking by the built-ins' signatures, and the error
 * codes and messages. jsonata's own synchronous built-ins (`$string`, `$substring`, `$number`,
 * `$fromMillis`…) are called as they are; the ones jsonata runs asynchronously (`$map`, `$sort`,
 * `$match`, `$replace`…) are re-implemented here, synchronously, line for line.
 *
 * What is not covered (parent `%`, descendants `**`, order-by `^( )`, transforms `| |`, partial
 * application `?`, `$eval`, lambda signatures) makes the whole mapping fall back to jsonata's
 * evaluator: `compiled` is then false and `reason` says why, so correctness never depends on
 * the compiler covering everything, and a test asserts that every shipped mapping compiles.
 * test/unit/compile.spec.ts checks, against jsonata itself, every golden sample, generated and
 * mutated reports, random JSON, and the tricky corners of the semantics.
 */
import jsonata from 'jsonata';

// biome-ignore lint/suspicious/noExplicitAny: JSONata values, nodes and errors are untyped by nature
type V = any;
/** A compiled node: its value for a context `input` in the variable frame `env`. */
type Ev = (input: V, env: Frame) => V;

/** A mapping ready to run: compiled, or jsonata's evaluator when it could not be compiled. */
export interface CompiledMapping {
  /** True when every node was compiled; false when this mapping runs on jsonata's evaluator. */
  readonly compiled: boolean;
  /** Why the mapping was not compiled (the first unsupported node or function). */
  readonly reason?: string;
  /** jsonata's own expression (kept for its syntax errors and positions, and the fallback). */
  readonly expression: jsonata.Expression;
  /**
   * The mapping's result for `input`. Compiled: the value itself, synchronously, or a thrown
   * jsonata-style error (`code`, `position`, `token`, `message` as jsonata words it). Not
   * compiled: a Promise of jsonata's result.
   */
  evaluate(input: unknown, bindings?: Record<string, unknown>): unknown;
  /**
   * What conversion calls: `evaluate`, except that when the compiled code throws, the input is
   * evaluated again by jsonata and its answer (a Promise) is returned instead. A rejected
   * report then gets jsonata's very words even where several parts of a mapping fail at once,
   * when jsonata, which evaluates the items of a constructor concurrently, may report another
   * of them than the first. Only rejected reports pay for a second evaluation.
   */
  run(input: unknown, bindings?: Record<string, unknown>): unknown;
}

/** Thrown while compiling a node the compiler does not cover; the mapping falls back. */
class Unsupported extends Error {}

// ---------------------------------------------------------------------------------------------
// jsonata's built-in functions

/** The built-ins jsonata implements synchronously: called as they are, through their signatures. */
// biome-ignore format: a list
const SYNC_NATIVES = [
  'sum', 'count', 'max', 'min', 'average', 'string', 'substring', 'substringBefore', 'substringAfter',
  'lowercase', 'uppercase', 'length', 'trim', 'pad', 'join', 'formatNumber', 'formatBase', 'formatInteger',
  'parseInteger', 'number', 'floor', 'ceil', 'round', 'abs', 'sqrt', 'power', 'random', 'boolean', 'not',
  'zip', 'keys', 'lookup', 'append', 'exists', 'spread', 'merge', 'reverse', 'error', 'assert', 'type',
  'shuffle', 'distinct', 'base64encode', 'base64decode', 'encodeUrlComponent', 'encodeUrl',
  'decodeUrlComponent', 'decodeUrl', 'toMillis', 'fromMillis', 'clone',
];
/** The built-ins jsonata implements with `async`: re-implemented below, synchronously. */
// biome-ignore format: a list
const ASYNC_NATIVES = ['contains', 'match', 'replace', 'split', 'map', 'filter', 'single', 'reduce', 'sift', 'each', 'sort'];

interface NativeDef {
  _jsonata_function: true;
  implementation: (...args: V[]) => V;
  signature?: Signature;
  token?: string;
  position?: number;
}

/**
 * jsonata's function objects, read once from its environment: jsonata calls an evaluation-entry
 * hook (`Symbol.for('jsonata.__evaluate_entry')`, the one debuggers use) synchronously, with the
 * environment, as an evaluation starts. If a later jsonata no longer does, or changes the
 * functions' shape, loading fails softly: every mapping then falls back, with that reason.
 */
const jsonataNatives = new Map<
  string,
  { implementation: (...a: V[]) => V; signature?: { definition: string } }
>();
let nativesProblem: string | undefined;
try {
  let environment: { lookup(name: string): V } | undefined;
  const probe = jsonata('$');
  const hook = Symbol.for('jsonata.__evaluate_entry') as unknown as string;
  probe.assign(hook, (_expr: V, _input: V, env: V) => {
    environment ??= env;
  });
  probe.evaluate(undefined).catch(() => undefined);
  if (!environment) throw new Error('its evaluation-entry hook was not called');
  for (const name of [...SYNC_NATIVES, ...ASYNC_NATIVES]) {
    const def = environment.lookup(name);
    if (typeof def?.implementation !== 'function' || typeof def.signature?.definition !== 'string') {
      throw new Error(`$${name} is not a function definition with a signature`);
    }
    jsonataNatives.set(name, def);
  }
} catch (err) {
  nativesProblem = `cannot read jsonata's built-in functions: ${(err as Error).message}`;
}
const impl = (name: string) => jsonataNatives.get(name)?.implementation ?? (() => undefined);

// ---------------------------------------------------------------------------------------------
// Values: sequences and helpers, as in jsonata's utils.js

/** A new sequence (jsonata's `createSequence`): an array flagged `sequence`, optionally with one item. */
function createSequence(...item: V[]): V {
  const s: V = [];
  s.sequence = true;
  if (item.length === 1) s.push(item[0]);
  return s;
}
const seq = (): V => {
  const s: V = [];
  s.sequence = true;
  return s;
};
/** A sequence of one item (`createSequence(item)`, even when the item is undefined). */
const seq1 = (item: V): V => {
  const s: V = [item];
  s.sequence = true;
  return s;
};

const isSequence = (v: V): boolean => v.sequence === true && Array.isArray(v);

function isNumeric(n: V): boolean {
  let isNum = false;
  if (typeof n === 'number') {
    isNum = !Number.isNaN(n);
    if (isNum && !Number.isFinite(n)) throw { code: 'D1001', value: n, stack: new Error().stack };
  }
  return isNum;
}

function isArrayOfStrings(arg: V): boolean {
  if (!Array.isArray(arg)) return false;
  for (const item of arg) if (typeof item !== 'string') return false;
  return true;
}

function isArrayOfNumbers(arg: V): boolean {
  if (!Array.isArray(arg)) return false;
  let all = true;
  // Every item is looked at (as jsonata's filter does): an infinite number throws even after a string.
  for (const item of arg) if (!isNumeric(item)) all = false;
  return all;
}

const isFunction = (arg: V): boolean =>
  typeof arg === 'function' ||
  (typeof arg === 'object' &&
    arg !== null &&
    (arg._jsonata_function === true || arg._jsonata_lambda === true));
const isLambda = (arg: V): boolean => arg && arg._jsonata_lambda === true;

function getFunctionArity(func: V): number {
  return typeof func.arity === 'number'
    ? func.arity
    : typeof func.implementation === 'function'
      ? func.implementation.length
      : typeof func.length === 'number'
        ? func.length
        : func.arguments.length;
}

function isDeepEqual(lhs: V, rhs: V): boolean {
  if (lhs === rhs) return true;
  if (typeof lhs === 'object' && typeof rhs === 'object' && lhs !== null && rhs !== null) {
    if (Array.isArray(lhs) && Array.isArray(rhs)) {
      if (lhs.length !== rhs.length) return false;
      for (let i = 0; i < lhs.length; i++) if (!isDeepEqual(lhs[i], rhs[i])) return false;
      return true;
    }
    const lkeys = Object.getOwnPropertyNames(lhs).sort();
    const rkeys = Object.getOwnPropertyNames(rhs).sort();
    if (lkeys.length !== rkeys.length) return false;
    for (let i = 0; i < lkeys.length; i++) if (lkeys[i] !== rkeys[i]) return false;
    for (const key of lkeys) if (!isDeepEqual(lhs[key], rhs[key])) return false;
    return true;
  }
  return false;
}

const keysOf = (arg: V): string[] => (typeof arg === 'object' && arg !== null ? Object.keys(arg) : []);

const nativeString = impl('string');

/** jsonata's `$string(v)`: a string as it is, an integer as JSON writes it, anything else by `$string`. */
const toStr = (v: V): string =>
  typeof v === 'string' ? v : typeof v === 'number' && Number.isInteger(v) ? String(v) : nativeString(v);

/** jsonata's `boolean` built-in (the effective boolean value), as in functions.js. */
function toBool(arg: V): boolean | undefined {
  if (arg === undefined) return undefined;
  switch (typeof arg) {
    case 'boolean':
      return arg;
    case 'string':
      return arg.length > 0;
    case 'number':
      return isNumeric(arg) && arg !== 0;
    case 'object':
      if (arg === null) return false;
      if (Array.isArray(arg)) {
        if (arg.length === 1) return toBool(arg[0]);
        if (arg.length > 1) {
          let trues = 0;
          for (const v of arg) if (toBool(v)) trues++;
          return trues > 0;
        }
        return false;
      }
      return !isFunction(arg) && Object.keys(arg).length > 0;
    default:
      return false;
  }
}

/** `this` of a built-in: what jsonata's focus gives them (a sequence factory, the timestamp). */
const focus = {
  createSequence,
  options: undefined,
  input: undefined,
  get environment() {
    return { timestamp: new Date(now()) };
  },
};

/** jsonata's `lookup`: a member of an object, or of every object of an array, flattened. */
function lookup(input: V, key: string): V {
  let result: V;
  if (Array.isArray(input)) {
    result = seq();
    for (let i = 0; i < input.length; i++) {
      const res = lookup(input[i], key);
      if (res !== undefined) {
        if (Array.isArray(res)) for (const v of res) result.push(v);
        else result.push(res);
      }
    }
  } else if (input !== null && typeof input === 'object' && Object.hasOwn(input, key) && !isFunction(input)) {
    result = input[key];
  }
  return result;
}

/** jsonata's `append`, as the array constructor uses it. */
function append(arg1: V, arg2: V): V {
  if (arg1 === undefined) return arg2;
  if (arg2 === undefined) return arg1;
  if (!Array.isArray(arg1)) arg1 = seq1(arg1);
  if (!Array.isArray(arg2)) arg2 = [arg2];
  return arg1.concat(arg2);
}

/** An object property, even `__proto__` (jsonata's objects have no prototype; ours do, for speed). */
function setProp(obj: V, key: string, value: V): void {
  if (key === '__proto__') {
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  } else obj[key] = value;
}

// ---------------------------------------------------------------------------------------------
// Frames (variable scopes), as jsonata's createFrame

/**
 * A scope: a block's, a lambda call's, a path step's tuple bindings (`#$i`), or the root (the
 * bindings given to `evaluate` and `$`), then the built-ins.
 */
class Frame {
  private vars: Map<string, V> | undefined;
  readonly root: Frame;
  /**
   * @param tuple a tuple of a path's tuple stream (`{'@': item, i: 0}`): its members are this
   * frame's first bindings (jsonata copies them in; a tuple is never changed once a step has
   * used it, so reading it in place is the same).
   */
  constructor(
    readonly parent: Frame | null,
    private readonly tuple?: Record<string, V>,
  ) {
    this.root = parent ? parent.root : this;
  }
  bind(name: string, value: V): void {
    if (this.vars === undefined) this.vars = new Map();
    this.vars.set(name, value);
  }
  lookup(name: string): V {
    for (let f: Frame | null = this; f; f = f.parent) {
      const vars = f.vars;
      if (vars !== undefined) {
        const value = vars.get(name);
        if (value !== undefined || vars.has(name)) return value;
      }
      const tuple = f.tuple;
      if (tuple !== undefined && Object.hasOwn(tuple, name)) return tuple[name];
    }
    return builtins.get(name);
  }
  /** A variable the expression never binds itself: a given binding or a built-in. */
  lookupGlobal(name: string): V {
    const vars = this.root.vars;
    if (vars !== undefined) {
      const value = vars.get(name);
      if (value !== undefined || vars.has(name)) return value;
    }
    return builtins.get(name);
  }
}

const frameFromTuple = (env: Frame, tuple: V): Frame => new Frame(env, tuple);

// ---------------------------------------------------------------------------------------------
// Evaluation state: $now() and $millis() give one instant per evaluation, as in jsonata

let evaluationTime: number | undefined;
const now = (): number => {
  evaluationTime ??= Date.now();
  return evaluationTime;
};

// ---------------------------------------------------------------------------------------------
// Function signatures (jsonata's signature.js), with each argument pattern's plan cached

interface Param {
  regex: string;
  type: string;
  array?: boolean;
  subtype?: string;
  context?: boolean;
  contextRegex?: RegExp;
}

/** What `validate` does with one parameter, for one pattern of argument types. */
type Step =
  /** pass the next argument (or, for a missing optional one, undefined) */
  | { op: 'arg' }
  /** a missing argument the function takes from the context value */
  | { op: 'context'; param: Param; argIndex: number }
  /** an array whose items must all have the subtype's type */
  | { op: 'items'; subtype: string; argIndex: number }
  /** a single value where an array is expected: wrapped in one */
  | { op: 'wrap' }
  /** a single value of the wrong type where an array of a given type is expected */
  | { op: 'wrong'; subtype: string; argIndex: number };

const ARRAY_TYPES: Record<string, string> = {
  a: 'arrays',
  b: 'booleans',
  f: 'functions',
  n: 'numbers',
  o: 'objects',
  s: 'strings',
};

function symbolOf(value: V): string {
  switch (typeof value) {
    case 'string':
      return 's';
    case 'number':
      return 'n';
    case 'boolean':
      return 'b';
    case 'function':
      return 'f';
    case 'object':
      return value === null ? 'l' : isFunction(value) ? 'f' : Array.isArray(value) ? 'a' : 'o';
    default:
      return 'm';
  }
}

const SYMBOL_CODES: Record<string, number> = { s: 1, n: 2, b: 3, f: 4, l: 5, a: 6, o: 7, m: 8 };

class Signature {
  private readonly params: Param[] = [];
  private readonly regex: RegExp;
  /** Supplied argument symbols (`snn`) → what to do with each argument, or null when they pass as they are. */
  private readonly plans = new Map<number, Step[] | null | 'bad'>();

  constructor(readonly definition: string) {
    let param: Param = Object.create(null);
    let prevParam = param;
    const next = () => {
      this.params.push(param);
      prevParam = param;
      param = Object.create(null);
    };
    const closing = (start: number, open: string, close: string) => {
      let depth = 1;
      let position = start;
      while (position < definition.length) {
        position++;
        const symbol = definition.charAt(position);
        if (symbol === close) {
          depth--;
          if (depth === 0) break;
        } else if (symbol === open) depth++;
      }
      return position;
    };
    for (let position = 1; position < definition.length; position++) {
      const symbol = definition.charAt(position);
      if (symbol === ':') break;
      switch (symbol) {
        case 's':
        case 'n':
        case 'b':
        case 'l':
        case 'o':
          param.regex = `[${symbol}m]`;
          param.type = symbol;
          next();
          break;
        case 'a':
          param.regex = '[asnblfom]';
          param.type = symbol;
          param.array = true;
          next();
          break;
        case 'f':
          param.regex = 'f';
          param.type = symbol;
          next();
          break;
        case 'j':
          param.regex = '[asnblom]';
          param.type = symbol;
          next();
          break;
        case 'x':
          param.regex = '[asnblfom]';
          param.type = symbol;
          next();
          break;
        case '-':
          prevParam.context = true;
          prevParam.contextRegex = new RegExp(prevParam.regex);
          prevParam.regex += '?';
          break;
        case '?':
        case '+':
          prevParam.regex += symbol;
          break;
        case '(': {
          const end = closing(position, '(', ')');
          const choice = definition.substring(position + 1, end);
          if (choice.includes('<')) throw new Unsupported(`signature ${definition}`);
          param.regex = `[${choice}m]`;
          param.type = `(${choice})`;
          position = end;
          next();
          break;
        }
        case '<': {
          if (prevParam.type !== 'a' && prevParam.type !== 'f')
            throw new Unsupported(`signature ${definition}`);
          const end = closing(position, '<', '>');
          prevParam.subtype = definition.substring(position + 1, end);
          position = end;
          break;
        }
      }
    }
    this.regex = new RegExp(`^${this.params.map((p) => `(${p.regex})`).join('')}$`);
  }

  /** jsonata's `validate`: the arguments as the function gets them, or T0410 / T0411 / T0412. */
  validate(args: V[], context: V): V[] {
    // The argument symbols as a number (one base-9 digit each), to find their plan.
    let key = 1;
    for (let i = 0; i < args.length; i++) key = key * 9 + SYMBOL_CODES[symbolOf(args[i])]!;
    let plan = this.plans.get(key);
    if (plan === undefined) {
      plan = this.plan(args.map(symbolOf).join(''));
      if (args.length < 12) this.plans.set(key, plan);
    }
    if (plan === null) return args;
    if (plan === 'bad') this.fail(args, args.map(symbolOf).join(''));
    const validated: V[] = [];
    let argIndex = 0;
    for (const step of plan as Step[]) {
      switch (step.op) {
        case 'arg':
          validated.push(args[argIndex++]);
          break;
        case 'context':
          if (!step.param.contextRegex!.test(symbolOf(context))) {
            throw { code: 'T0411', stack: new Error().stack, value: context, index: step.argIndex + 1 };
          }
          validated.push(context);
          break;
        case 'items': {
          const arg = args[argIndex++];
          if (arg.length > 0) {
            const itemType = symbolOf(arg[0]);
            let ok = itemType === step.subtype.charAt(0);
            if (ok) for (const item of arg) if (symbolOf(item) !== itemType) ok = false;
            if (!ok) this.wrongArray(arg, step.argIndex, step.subtype);
          }
          validated.push(arg);
          break;
        }
        case 'wrap':
          validated.push([args[argIndex++]]);
          break;
        case 'wrong':
          this.wrongArray(args[argIndex], step.argIndex, step.subtype);
      }
    }
    return validated;
  }

  /** What `validate` does for these argument symbols: null = nothing (pass them as they are), 'bad' = T0410. */
  private plan(supplied: string): Step[] | null | 'bad' {
    const isValid = this.regex.exec(supplied);
    if (!isValid) return 'bad';
    const steps: Step[] = [];
    let argIndex = 0;
    this.params.forEach((param, index) => {
      const match = isValid[index + 1]!;
      if (match === '') {
        if (param.context && param.contextRegex) steps.push({ op: 'context', param, argIndex });
        else {
          steps.push({ op: 'arg' });
          argIndex++;
        }
        return;
      }
      for (const single of match) {
        if (param.type !== 'a' || single === 'm') steps.push({ op: 'arg' });
        else if (param.subtype === undefined) steps.push(single === 'a' ? { op: 'arg' } : { op: 'wrap' });
        else if (single === 'a') steps.push({ op: 'items', subtype: param.subtype, argIndex });
        else if (match !== param.subtype) steps.push({ op: 'wrong', subtype: param.subtype, argIndex });
        else steps.push({ op: 'wrap' });
        argIndex++;
      }
    });
    return steps.length === supplied.length && steps.every((s) => s.op === 'arg') ? null : steps;
  }

  private wrongArray(arg: V, argIndex: number, subtype: string): never {
    throw {
      code: 'T0412',
      stack: new Error().stack,
      value: arg,
      index: argIndex + 1,
      type: ARRAY_TYPES[subtype],
    };
  }

  private fail(args: V[], supplied: string): never {
    let partial = '^';
    let goodTo = 0;
    for (const param of this.params) {
      partial += param.regex;
      const match = supplied.match(partial);
      if (match === null)
        throw { code: 'T0410', stack: new Error().stack, value: args[goodTo], index: goodTo + 1 };
      goodTo = match[0].length;
    }
    throw { code: 'T0410', stack: new Error().stack, value: args[goodTo], index: goodTo + 1 };
  }
}

// ---------------------------------------------------------------------------------------------
// Function application (jsonata's apply / applyInner / applyProcedure, without the awaits)

interface Lambda {
  _jsonata_lambda: true;
  input: V;
  environment: Frame;
  arguments: { value: string }[];
  body: Ev;
  thunk?: boolean;
  /** The tail call a thunk stands for. */
  call?: TailCall;
  token?: string;
  position?: number;
  apply(self: V, args: V[]): V;
}

interface TailCall {
  procedure: Ev;
  procedureNode: V;
  args: Ev[];
}

function apply(proc: V, args: V[], input: V): V {
  let result = applyInner(proc, args, input);
  while (isLambda(result) && result.thunk === true) {
    // a tail call: evaluated here, so that tail recursion does not grow the stack
    const call = (result as Lambda).call!;
    const next = call.procedure(result.input, result.environment);
    if (call.procedureNode.type === 'variable') next.token = call.procedureNode.value;
    next.position = call.procedureNode.position;
    const evaluatedArgs: V[] = [];
    for (const arg of call.args) evaluatedArgs.push(arg(result.input, result.environment));
    result = applyInner(next, evaluatedArgs, input);
  }
  return result;
}

function applyInner(proc: V, args: V[], input: V): V {
  let result: V;
  try {
    let validatedArgs = args;
    if (proc && proc.signature !== undefined)
      validatedArgs = (proc.signature as Signature).validate(args, input);
    if (isLambda(proc)) {
      const frame = new Frame(proc.environment);
      const params = (proc as Lambda).arguments;
      for (let i = 0; i < params.length; i++) frame.bind(params[i]!.value, validatedArgs[i]);
      result = proc.body(proc.input, frame);
    } else if (proc && proc._jsonata_function === true) {
      result = proc.implementation.apply(focus, validatedArgs);
    } else if (typeof proc === 'function') {
      result = proc.apply(input, validatedArgs);
    } else {
      throw { code: 'T1006', stack: new Error().stack };
    }
  } catch (err) {
    const e = err as V;
    if (proc) {
      if (e.token === undefined && proc.token !== undefined) e.token = proc.token;
      e.position = proc.position || e.position;
    }
    throw err;
  }
  return result;
}

function makeLambda(input: V, env: Frame, params: { value: string }[], body: Ev): Lambda {
  const procedure: Lambda = {
    _jsonata_lambda: true,
    input,
    environment: env,
    arguments: params,
    body,
    apply: (_self: V, args: V[]) => apply(procedure, args, input),
  };
  return procedure;
}

/** hofFuncArgs: the value, then its index (or key) and the whole, as far as the function takes them. */
function hofArgs(func: V, arg1: V, arg2: V, arg3: V): V[] {
  const args = [arg1];
  const length = getFunctionArity(func);
  if (length >= 2) args.push(arg2);
  if (length >= 3) args.push(arg3);
  return args;
}

// ---------------------------------------------------------------------------------------------
// The built-ins jsonata runs asynchronously, synchronously (same code, same errors)

function evaluateMatcher(matcher: V, str: V): V {
  const result = matcher.apply(focus, [str]);
  if (
    result &&
    !(
      typeof result.start === 'number' ||
      result.end === 'number' ||
      Array.isArray(result.groups) ||
      isFunction(result.next)
    )
  ) {
    throw { code: 'T1010', stack: new Error().stack };
  }
  return result;
}

function contains(str: V, token: V): V {
  if (str === undefined || token === undefined) return undefined;
  if (typeof token === 'string') return str.indexOf(token) !== -1;
  return evaluateMatcher(token, str) !== undefined;
}

function match(str: V, regex: V, limit: V): V {
  if (str === undefined) return undefined;
  if (limit < 0) throw { stack: new Error().stack, value: limit, code: 'D3040', index: 3 };
  const result = seq();
  if (limit === undefined || limit > 0) {
    let count = 0;
    let matches = evaluateMatcher(regex, str);
    if (matches !== undefined) {
      while (matches !== undefined && (limit === undefined || count < limit)) {
        result.push({ match: matches.match, index: matches.start, groups: matches.groups });
        matches = evaluateMatcher(matches.next, undefined);
        count++;
      }
    }
  }
  return result;
}

function replace(str: V, pattern: V, replacement: V, limit: V): V {
  if (str === undefined) return undefined;
  if (pattern === '') throw { code: 'D3010', stack: new Error().stack, value: pattern, index: 2 };
  if (limit < 0) throw { code: 'D3011', stack: new Error().stack, value: limit, index: 4 };
  let replacer: V;
  if (typeof replacement === 'string') {
    replacer = (regexMatch: V) => {
      let substitute = '';
      let position = 0;
      let index = replacement.indexOf('$', position);
      while (index !== -1 && position < replacement.length) {
        substitute += replacement.substring(position, index);
        position = index + 1;
        const dollarVal = replacement.charAt(position);
        if (dollarVal === '$') {
          substitute += '$';
          position++;
        } else if (dollarVal === '0') {
          substitute += regexMatch.match;
          position++;
        } else {
          const maxDigits =
            regexMatch.groups.length === 0
              ? 1
              : Math.floor(Math.log(regexMatch.groups.length) * Math.LOG10E) + 1;
          index = Number.parseInt(replacement.substring(position, position + maxDigits), 10);
          if (maxDigits > 1 && index > regexMatch.groups.length) {
            index = Number.parseInt(replacement.substring(position, position + maxDigits - 1), 10);
          }
          if (!Number.isNaN(index)) {
            if (regexMatch.groups.length > 0) {
              const submatch = regexMatch.groups[index - 1];
              if (submatch !== undefined) substitute += submatch;
            }
            position += index.toString().length;
          } else substitute += '$';
        }
        index = replacement.indexOf('$', position);
      }
      substitute += replacement.substring(position);
      return substitute;
    };
  } else replacer = replacement;

  let result = '';
  let position = 0;
  if (limit === undefined || limit > 0) {
    let count = 0;
    if (typeof pattern === 'string') {
      let index = str.indexOf(pattern, position);
      while (index !== -1 && (limit === undefined || count < limit)) {
        result += str.substring(position, index);
        result += replacement;
        position = index + pattern.length;
        count++;
        index = str.indexOf(pattern, position);
      }
      result += str.substring(position);
    } else {
      let matches = evaluateMatcher(pattern, str);
      if (matches !== undefined) {
        while (matches !== undefined && (limit === undefined || count < limit)) {
          result += str.substring(position, matches.start);
          const replacedWith = replacer.apply(focus, [matches]);
          if (typeof replacedWith === 'string') result += replacedWith;
          else throw { code: 'D3012', stack: new Error().stack, value: replacedWith };
          position = matches.start + matches.match.length;
          count++;
          matches = evaluateMatcher(matches.next, undefined);
        }
        result += str.substring(position);
      } else result = str;
    }
  } else result = str;
  return result;
}

function split(str: V, separator: V, limit: V): V {
  if (str === undefined) return undefined;
  if (limit < 0) throw { code: 'D3020', stack: new Error().stack, value: limit, index: 3 };
  let result: V = [];
  if (limit === undefined || limit > 0) {
    if (typeof separator === 'string') result = str.split(separator, limit);
    else {
      let count = 0;
      let matches = evaluateMatcher(separator, str);
      if (matches !== undefined) {
        let start = 0;
        while (matches !== undefined && (limit === undefined || count < limit)) {
          result.push(str.substring(start, matches.start));
          start = matches.end;
          matches = evaluateMatcher(matches.next, undefined);
          count++;
        }
        if (limit === undefined || count < limit) result.push(str.substring(start));
      } else result.push(str);
    }
  }
  return result;
}

function map(arr: V, func: V): V {
  if (arr === undefined) return undefined;
  const result = seq();
  for (let i = 0; i < arr.length; i++) {
    const res = func.apply(focus, hofArgs(func, arr[i], i, arr));
    if (res !== undefined) result.push(res);
  }
  return result;
}

function filter(arr: V, func: V): V {
  if (arr === undefined) return undefined;
  const result = seq();
  for (let i = 0; i < arr.length; i++) {
    const entry = arr[i];
    if (toBool(func.apply(focus, hofArgs(func, entry, i, arr)))) result.push(entry);
  }
  return result;
}

function single(arr: V, func: V): V {
  if (arr === undefined) return undefined;
  let hasFoundMatch = false;
  let result: V;
  for (let i = 0; i < arr.length; i++) {
    const entry = arr[i];
    let positiveResult: V = true;
    if (func !== undefined) positiveResult = toBool(func.apply(focus, hofArgs(func, entry, i, arr)));
    if (positiveResult) {
      if (!hasFoundMatch) {
        result = entry;
        hasFoundMatch = true;
      } else throw { stack: new Error().stack, code: 'D3138', index: i };
    }
  }
  if (!hasFoundMatch) throw { stack: new Error().stack, code: 'D3139' };
  return result;
}

function foldLeft(sequence: V, func: V, init: V): V {
  if (sequence === undefined) return undefined;
  let result: V;
  const arity = getFunctionArity(func);
  if (arity < 2) throw { stack: new Error().stack, code: 'D3050', index: 1 };
  let index: number;
  if (init === undefined && sequence.length > 0) {
    result = sequence[0];
    index = 1;
  } else {
    result = init;
    index = 0;
  }
  while (index < sequence.length) {
    const args = [result, sequence[index]];
    if (arity >= 3) args.push(index);
    if (arity >= 4) args.push(sequence);
    result = func.apply(focus, args);
    index++;
  }
  return result;
}

function sift(arg: V, func: V): V {
  let result: V = Object.create(null);
  for (const item of keysOf(arg)) {
    const entry = arg[item];
    if (toBool(func.apply(focus, hofArgs(func, entry, item, arg)))) result[item] = entry;
  }
  if (keysOf(result).length === 0) result = undefined;
  return result;
}

function each(obj: V, func: V): V {
  const result = seq();
  for (const key of keysOf(obj)) {
    const val = func.apply(focus, hofArgs(func, obj[key], key, obj));
    if (val !== undefined) result.push(val);
  }
  return result;
}

/** jsonata's merge sort (stable), iterative: the comparator sees the same pairs in the same order. */
function sort(arr: V, comparator: V): V {
  if (arr === undefined) return undefined;
  if (arr.length <= 1) return arr;
  let comp: (a: V, b: V) => V;
  if (comparator === undefined) {
    if (!isArrayOfNumbers(arr) && !isArrayOfStrings(arr))
      throw { stack: new Error().stack, code: 'D3070', index: 1 };
    comp = (a, b) => a > b;
  } else comp = (a, b) => comparator.apply(focus, [a, b]);
  const merge = (left: V[], right: V[]): V[] => {
    const result: V[] = [];
    let l = 0;
    let r = 0;
    while (l < left.length && r < right.length) {
      if (comp(left[l], right[r])) result.push(right[r++]);
      else result.push(left[l++]);
    }
    while (l < left.length) result.push(left[l++]);
    while (r < right.length) result.push(right[r++]);
    return result;
  };
  const msort = (array: V[]): V[] => {
    if (array.length <= 1) return array;
    const middle = Math.floor(array.length / 2);
    return merge(msort(array.slice(0, middle)), msort(array.slice(middle)));
  };
  return msort(arr);
}

/** Every built-in, by name: where a variable is looked for last. */
const builtins = new Map<string, NativeDef>();
function define(name: string, implementation: (...a: V[]) => V, signature: string): void {
  builtins.set(name, { _jsonata_function: true, implementation, signature: new Signature(signature) });
}
if (!nativesProblem) {
  for (const name of SYNC_NATIVES) {
    const n = jsonataNatives.get(name)!;
    define(name, n.implementation, n.signature!.definition);
  }
  const ported: Record<string, (...a: V[]) => V> = {
    contains,
    match,
    replace,
    split,
    map,
    filter,
    single,
    reduce: foldLeft,
    sift,
    each,
    sort,
  };
  for (const [name, fn] of Object.entries(ported)) {
    const original = jsonataNatives.get(name)!;
    if (original.implementation.length !== fn.length) {
      nativesProblem = `jsonata's $${name} takes ${original.implementation.length} arguments, the compiler's ${fn.length}`;
    }
    define(name, fn, original.signature!.definition);
  }
  // Bound per expression in jsonata, with the instant of the evaluation.
  const fromMillis = impl('fromMillis');
  define('now', (picture: V, timezone: V) => fromMillis.call(focus, now(), picture, timezone), '<s?s?:s>');
  define('millis', () => now(), '<:n>');
}

// ---------------------------------------------------------------------------------------------
// Errors: jsonata's messages for the codes evaluation can raise (its populateMessage)

// biome-ignore format: a table, one code a line
const MESSAGES: Record<string, string> = {
  T0410: 'Argument {{index}} of function {{token}} does not match function signature',
  T0411: 'Context value is not a compatible type with argument {{index}} of function {{token}}',
  T0412: 'Argument {{index}} of function {{token}} must be an array of {{type}}',
  D1001: 'Number out of range: {{value}}',
  D1002: 'Cannot negate a non-numeric value: {{value}}',
  T1003: 'Key in object structure must evaluate to a string; got: {{value}}',
  D1004: 'Regular expression matches zero length string',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: jsonata's template, `$` then the token
  T1005: 'Attempted to invoke a non-function. Did you mean ${{{token}}}?',
  T1006: 'Attempted to invoke a non-function',
  D1009: 'Multiple key definitions evaluate to same key: {{value}}',
  T1010: 'The matcher function argument passed to function {{token}} does not return the correct object structure',
  D1013: 'Object property names starting with _jsonata_ are reserved for internal use: {{value}}',
  T2001: 'The left side of the {{token}} operator must evaluate to a number',
  T2002: 'The right side of the {{token}} operator must evaluate to a number',
  T2003: 'The left side of the range operator (..) must evaluate to an integer',
  T2004: 'The right side of the range operator (..) must evaluate to an integer',
  T2006: 'The right side of the function application operator ~> must be a function',
  T2009: 'The values {{value}} and {{value2}} either side of operator {{token}} must be of the same data type',
  T2010: 'The expressions either side of operator {{token}} must evaluate to numeric or string values',
  D2014: 'The size of the sequence allocated by the range operator (..) must not exceed 1e7.  Attempted to allocate {{value}}.',
  D3001: 'Attempting to invoke string function on Infinity or NaN',
  D3010: 'Second argument of replace function cannot be an empty string',
  D3011: 'Fourth argument of replace function must evaluate to a positive number',
  D3012: 'Attempted to replace a matched string with a non-string value',
  D3020: 'Third argument of split function must evaluate to a positive number',
  D3030: 'Unable to cast value to a number: {{value}}',
  D3040: 'Third argument of match function must evaluate to a positive number',
  D3050: 'The second argument of reduce function must be a function with at least two arguments',
  D3060: 'The sqrt function cannot be applied to a negative number: {{value}}',
  D3061: 'The power function has resulted in a value that cannot be represented as a JSON number: base={{value}}, exponent={{exp}}',
  D3070: 'The single argument form of the sort function can only be applied to an array of strings or an array of numbers.  Use the second argument to specify a comparison function',
  D3080: 'The picture string must only contain a maximum of two sub-pictures',
  D3081: "The sub-picture must not contain more than one instance of the 'decimal-separator' character",
  D3082: "The sub-picture must not contain more than one instance of the 'percent' character",
  D3083: "The sub-picture must not contain more than one instance of the 'per-mille' character",
  D3084: "The sub-picture must not contain both a 'percent' and a 'per-mille' character",
  D3085: "The mantissa part of a sub-picture must contain at least one character that is either an 'optional digit character' or a member of the 'decimal digit family'",
  D3086: 'The sub-picture must not contain a passive character that is preceded by an active character and that is followed by another active character',
  D3087: "The sub-picture must not contain a 'grouping-separator' character that appears adjacent to a 'decimal-separator' character",
  D3088: "The sub-picture must not contain a 'grouping-separator' at the end of the integer part",
  D3089: "The sub-picture must not contain two adjacent instances of the 'grouping-separator' character",
  D3090: "The integer part of the sub-picture must not contain a member of the 'decimal digit family' that is followed by an instance of the 'optional digit character'",
  D3091: "The fractional part of the sub-picture must not contain an instance of the 'optional digit character' that is followed by a member of the 'decimal digit family'",
  D3092: "A sub-picture that contains a 'percent' or 'per-mille' character must not contain a character treated as an 'exponent-separator'",
  D3093: "The exponent part of the sub-picture must comprise only of one or more characters that are members of the 'decimal digit family'",
  D3100: 'The radix of the formatBase function must be between 2 and 36.  It was given {{value}}',
  D3110: 'The argument of the toMillis function must be an ISO 8601 formatted timestamp. Given {{value}}',
  D3130: 'Formatting or parsing an integer as a sequence starting with {{value}} is not supported by this implementation',
  D3131: 'In a decimal digit pattern, all digits must be from the same decimal group',
  D3132: 'Unknown component specifier {{value}} in date/time picture string',
  D3133: 'The \'name\' modifier can only be applied to months and days in the date/time picture string, not {{value}}',
  D3134: 'The timezone integer format specifier cannot have more than four digits',
  D3135: "No matching closing bracket ']' in date/time picture string",
  D3136: 'The date/time picture string is missing specifiers required to parse the timestamp',
  D3137: '{{{message}}}',
  D3138: 'The $single() function expected exactly 1 matching result.  Instead it matched more.',
  D3139: 'The $single() function expected exactly 1 matching result.  Instead it matched 0.',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: jsonata's template, `$` then the name
  D3140: 'Malformed URL passed to ${{{functionName}}}(): {{value}}',
  D3141: '{{{message}}}',
};

function populateMessage(err: V): void {
  const template = MESSAGES[err.code];
  if (template !== undefined) {
    err.message = template
      .replace(/\{\{\{([^}]+)}}}/g, (_, name: string) => err[name])
      .replace(/\{\{([^}]+)}}/g, (_, name: string) => JSON.stringify(err[name]));
  }
}

// ---------------------------------------------------------------------------------------------
// The compiler: one closure per node

/**
 * The variable names the expression being compiled binds anywhere (`:=`, lambda parameters,
 * `#$i`, `@$v`). Any other name can only be a binding given to `evaluate` or a built-in, so it
 * is looked up there directly.
 */
let locals = new Set<string>();

function boundNames(node: V, names = new Set<string>()): Set<string> {
  if (!node || typeof node !== 'object') return names;
  if (Array.isArray(node)) {
    for (const n of node) boundNames(n, names);
    return names;
  }
  if (node.type === 'bind') names.add(node.lhs.value);
  if (node.type === 'lambda') for (const a of node.arguments ?? []) names.add(a.value);
  if (typeof node.index === 'string') names.add(node.index);
  if (typeof node.focus === 'string') names.add(node.focus);
  if (node.type === 'index') names.add(node.value);
  for (const key of Object.keys(node)) if (key !== 'position') boundNames(node[key], names);
  return names;
}

/** Compile a whole expression (its own set of bound names). */
function compileExpression(ast: V): Ev {
  const outer = locals;
  locals = boundNames(ast);
  try {
    return compile(ast);
  } finally {
    locals = outer;
  }
}

/** What every node's evaluation ends with (jsonata's `evaluate`): predicates, group-by, sequences. */
function finish(node: V, core: Ev): Ev {
  const predicates: Predicate[] | undefined = node.predicate?.map((p: V) => compilePredicate(p.expr));
  const group = node.type !== 'path' && node.group ? compileGroup(node.group) : undefined;
  const keepArray = node.keepArray === true;
  if (!predicates && !group) {
    if (!keepArray) {
      return (input, env) => {
        const result = core(input, env);
        if (Array.isArray(result) && (result as V).sequence === true && !(result as V).tupleStream) {
          if (result.length === 0) return undefined;
          if (result.length === 1) return (result as V).keepSingleton ? result : result[0];
        }
        return result;
      };
    }
  }
  return (input, env) => {
    let result = core(input, env);
    if (predicates) for (const p of predicates) result = evaluateFilter(p, result, env);
    if (group) result = group(result, env);
    if (result && isSequence(result) && !result.tupleStream) {
      if (keepArray) result.keepSingleton = true;
      if (result.length === 0) result = undefined;
      else if (result.length === 1) result = result.keepSingleton ? result : result[0];
    }
    return result;
  };
}

/**
 * `finish` for a node whose value is never a sequence (a literal, a constructor, an operator
 * other than `..`, a regex, a lambda): only its predicates, group-by or `[]` need applying.
 */
const finishValue = (node: V, core: Ev): Ev =>
  node.predicate || node.group || node.keepArray ? finish(node, core) : core;

function compile(node: V): Ev {
  switch (node.type) {
    case 'string':
    case 'number':
    case 'value': {
      const { value } = node;
      return finishValue(node, () => value);
    }
    case 'path':
      return finish(node, compilePath(node));
    case 'binary':
      return node.value === '..' ? finish(node, compileBinary(node)) : finishValue(node, compileBinary(node));
    case 'unary':
      return finishValue(node, compileUnary(node));
    case 'name': {
      const name = node.value as string;
      return finish(node, (input) => lookup(input, name));
    }
    case 'wildcard':
      return finish(node, evaluateWildcard);
    case 'condition': {
      const condition = compile(node.condition);
      const then = compile(node.then);
      const otherwise = node.else !== undefined ? compile(node.else) : undefined;
      return finish(node, (input, env) => {
        if (toBool(condition(input, env))) return then(input, env);
        return otherwise ? otherwise(input, env) : undefined;
      });
    }
    case 'block': {
      const expressions = (node.expressions as V[]).map(compile);
      return finish(node, (input, env) => {
        const frame = new Frame(env);
        let result: V;
        for (const e of expressions) result = e(input, frame);
        return result;
      });
    }
    case 'bind': {
      const name = node.lhs.value as string;
      const rhs = compile(node.rhs);
      return finish(node, (input, env) => {
        const value = rhs(input, env);
        env.bind(name, value);
        return value;
      });
    }
    case 'regex': {
      const regex = node.value as RegExp;
      return finishValue(node, () => regexClosure(regex, node.position));
    }
    case 'function':
      return finish(node, compileCall(node));
    case 'variable': {
      const name = node.value as string;
      if (name === 'eval') throw new Unsupported('$eval');
      if (name === '') return finish(node, (input) => (input?.outerWrapper ? input[0] : input));
      if (!locals.has(name)) return finish(node, (_input, env) => env.lookupGlobal(name));
      return finish(node, (_input, env) => env.lookup(name));
    }
    case 'lambda':
      return finishValue(node, compileLambda(node));
    case 'apply':
      return finish(node, compileApply(node));
    default:
      throw new Unsupported(UNSUPPORTED[node.type as string] ?? `a ${node.type} node`);
  }
}

/** The node types left to jsonata, by what they are called in the language. */
const UNSUPPORTED: Record<string, string> = {
  parent: 'the parent operator %',
  descendant: 'descendants **',
  partial: 'partial application ?',
  transform: 'a transform | … |',
};

// ---- paths -----------------------------------------------------------------------------------

type Stage = { type: 'filter'; predicate: Predicate } | { type: 'index'; value: string };

interface CompiledStep {
  ev: Ev;
  /** Predicates and `#$i` positions after the step, in order (jsonata's `stages`). */
  stages?: Stage[];
  /** The stages when they are all predicates (a step outside a tuple stream). */
  filters?: Predicate[];
  tuple: boolean;
  focus?: string;
  index?: string;
  consarray: boolean;
}

function compileStep(step: V): CompiledStep {
  if (step.type === 'sort') throw new Unsupported('order-by ^( )');
  const names = [step.index, step.focus, ...(step.stages ?? []).map((s: V) => s.type === 'index' && s.value)];
  if (names.includes('__proto__')) throw new Unsupported('$__proto__ as a position or focus variable');
  if (step.ancestor !== undefined) throw new Unsupported('the parent operator %');
  const stages = (step.stages as V[] | undefined)?.map(
    (s): Stage =>
      s.type === 'filter'
        ? { type: 'filter', predicate: compilePredicate(s.expr) }
        : { type: 'index', value: s.value as string },
  );
  return {
    ev: compile(step),
    stages,
    filters: stages?.every((s) => s.type === 'filter') ? stages.map((s) => s.predicate) : undefined,
    tuple: step.tuple === true,
    focus: step.focus,
    index: step.index,
    consarray: step.consarray === true,
  };
}

function compilePath(node: V): Ev {
  if (node.tuple) throw new Unsupported('the parent operator %');
  const steps = (node.steps as V[]).map(compileStep);
  const firstIsVariable = node.steps[0].type === 'variable';
  const group = node.group ? compileGroup(node.group) : undefined;
  const keepSingletonArray = node.keepSingletonArray === true;
  const last = steps.length - 1;

  // The common case: no tuple binding anywhere (no #$i, no @$v), no group-by, no [] suffix.
  if (!steps.some((s) => s.tuple) && !group && !keepSingletonArray && !node.keepArray) {
    const consFirst = steps[0]!.consarray;
    return (input, env) => {
      let inputSequence: V;
      let ii = 0;
      if ((firstIsVariable || !Array.isArray(input)) && !consFirst) {
        // One context value: while each step gives one value (not an array), no sequence is
        // built. The value returned is what jsonata's sequence of one collapses to.
        let value = input;
        for (; ii <= last; ii++) {
          const step = steps[ii]!;
          let res = step.ev(value, env);
          if (step.filters) for (const f of step.filters) res = evaluateFilter(f, res, env);
          if (res === undefined) return undefined;
          if (!Array.isArray(res) || (res as V).cons) {
            value = res;
            continue;
          }
          // an array: the last step gives it as it is (unless it is a sequence), others flatten it
          if (ii === last && !isSequence(res)) return res;
          inputSequence = seq();
          for (const v of res) inputSequence.push(v);
          if (ii === last || inputSequence.length === 0) return inputSequence;
          ii++;
          break;
        }
        if (ii > last) return value;
      } else inputSequence = Array.isArray(input) && !firstIsVariable ? input : seq1(input);
      let resultSequence: V = inputSequence;
      for (; ii <= last; ii++) {
        const step = steps[ii]!;
        if (ii === 0 && step.consarray) resultSequence = step.ev(inputSequence, env);
        else resultSequence = evaluateStep(step, inputSequence, env, ii === last);
        if (resultSequence === undefined || resultSequence.length === 0) break;
        inputSequence = resultSequence;
      }
      return resultSequence;
    };
  }

  return (input, env) => {
    let inputSequence: V = Array.isArray(input) && !firstIsVariable ? input : seq1(input);
    let resultSequence: V;
    let isTupleStream = false;
    let tupleBindings: V;
    for (let ii = 0; ii <= last; ii++) {
      const step = steps[ii]!;
      if (step.tuple) isTupleStream = true;
      if (ii === 0 && step.consarray) resultSequence = step.ev(inputSequence, env);
      else if (isTupleStream) tupleBindings = evaluateTupleStep(step, inputSequence, tupleBindings, env);
      else resultSequence = evaluateStep(step, inputSequence, env, ii === last);
      if (!isTupleStream && (resultSequence === undefined || resultSequence.length === 0)) break;
      if (step.focus === undefined) inputSequence = resultSequence;
    }
    if (isTupleStream) {
      resultSequence = seq();
      for (const tuple of tupleBindings) resultSequence.push(tuple['@']);
    }
    if (keepSingletonArray) {
      if (Array.isArray(resultSequence) && (resultSequence as V).cons && !(resultSequence as V).sequence) {
        resultSequence = createSequence(resultSequence);
      }
      resultSequence.keepSingleton = true;
    }
    if (group) resultSequence = group(isTupleStream ? tupleBindings : resultSequence, env);
    return resultSequence;
  };
}

function evaluateStep(step: CompiledStep, input: V, env: Frame, lastStep: boolean): V {
  const result: V[] = [];
  const filters = step.filters;
  for (let ii = 0; ii < input.length; ii++) {
    let res = step.ev(input[ii], env);
    if (filters) for (const f of filters) res = evaluateFilter(f, res, env);
    if (res !== undefined) result.push(res);
  }
  if (lastStep && result.length === 1 && Array.isArray(result[0]) && !isSequence(result[0])) return result[0];
  const resultSequence = seq();
  for (const res of result) {
    if (!Array.isArray(res) || (res as V).cons) resultSequence.push(res);
    else for (const val of res) resultSequence.push(val);
  }
  return resultSequence;
}

function evaluateStages(stages: Stage[], input: V, env: Frame): V {
  let result = input;
  for (const stage of stages) {
    if (stage.type === 'filter') result = evaluateFilter(stage.predicate, result, env);
    else for (let ee = 0; ee < result.length; ee++) result[ee][stage.value] = ee;
  }
  return result;
}

function evaluateTupleStep(step: CompiledStep, input: V, tupleBindings: V, env: Frame): V {
  let result = seq();
  result.tupleStream = true;
  if (tupleBindings === undefined) tupleBindings = input.map((item: V) => ({ '@': item }));
  for (const binding of tupleBindings) {
    const stepEnv = frameFromTuple(env, binding);
    let res = step.ev(binding['@'], stepEnv);
    if (res !== undefined) {
      if (!Array.isArray(res)) res = [res];
      for (let bb = 0; bb < res.length; bb++) {
        // a plain object (jsonata's have no prototype): `$__proto__` is refused as a name
        const tuple = { ...binding };
        if ((res as V).tupleStream) Object.assign(tuple, res[bb]);
        else {
          if (step.focus) {
            tuple[step.focus] = res[bb];
            tuple['@'] = binding['@'];
          } else tuple['@'] = res[bb];
          if (step.index) tuple[step.index] = bb;
        }
        result.push(tuple);
      }
    }
  }
  if (step.stages) result = evaluateStages(step.stages, result, env);
  return result;
}

// ---- predicates ------------------------------------------------------------------------------

interface Predicate {
  /** `[n]` with a literal number: the index, rounded down. */
  index?: number;
  /** The predicate depends on nothing (`[[0..999]]`): the same value for every item. */
  constant?: boolean;
  /** A constant predicate's positions (none negative) and how many times each is named, once known. */
  positions?: Map<number, number>;
  ev: Ev;
}

function compilePredicate(expr: V): Predicate {
  if (expr.type === 'number') return { index: Math.floor(expr.value), ev: () => expr.value };
  return { ev: compile(expr), constant: isConstant(expr) };
}

/** Literals, and array constructors, ranges and arithmetic of literals: no context, no variable, no call. */
function isConstant(node: V): boolean {
  if (node.predicate || node.group || node.stages || node.keepArray) return false;
  switch (node.type) {
    case 'string':
    case 'number':
    case 'value':
      return true;
    case 'unary':
      return node.value === '['
        ? node.expressions.every(isConstant)
        : node.value === '-' && isConstant(node.expression);
    case 'binary':
      return (
        ['..', '+', '-', '*', '/', '%'].includes(node.value) && isConstant(node.lhs) && isConstant(node.rhs)
      );
    default:
      return false;
  }
}

function evaluateFilter(predicate: Predicate, input: V, env: Frame): V {
  let results = seq();
  if (input?.tupleStream) results.tupleStream = true;
  if (!Array.isArray(input)) input = seq1(input);
  if (predicate.index !== undefined) {
    let index = predicate.index;
    if (index < 0) index = input.length + index;
    const item = input[index];
    if (item !== undefined) {
      if (Array.isArray(item)) results = item;
      else results.push(item);
    }
    return results;
  }
  if (predicate.constant && input.length > 0) return filterByConstant(predicate, input, results, env);
  for (let index = 0; index < input.length; index++) {
    const item = input[index];
    let context = item;
    let frame = env;
    if (input.tupleStream) {
      context = item['@'];
      frame = frameFromTuple(env, item);
    }
    let res = predicate.ev(context, frame);
    if (isNumeric(res)) res = [res];
    if (isArrayOfNumbers(res)) {
      for (const ires of res) {
        let ii = Math.floor(ires);
        if (ii < 0) ii = input.length + ii;
        if (ii === index) results.push(item);
      }
    } else if (toBool(res)) results.push(item);
  }
  return results;
}

/**
 * evaluateFilter for a constant predicate: evaluated once rather than once per item (jsonata
 * evaluates it for every item, and only when there is one), then each item is kept as many
 * times as the value names its position.
 */
function filterByConstant(predicate: Predicate, input: V, results: V, env: Frame): V {
  let times = predicate.positions;
  if (times === undefined) {
    let res = predicate.ev(input.tupleStream ? input[0]['@'] : input[0], env);
    if (isNumeric(res)) res = [res];
    if (!isArrayOfNumbers(res)) {
      if (toBool(res)) for (const item of input) results.push(item);
      return results;
    }
    times = new Map<number, number>();
    let negative = false;
    for (const ires of res) {
      let ii = Math.floor(ires);
      if (ii < 0) {
        ii = input.length + ii;
        negative = true;
      }
      times.set(ii, (times.get(ii) ?? 0) + 1);
    }
    // positions counted from the end depend on the input's length: not kept
    if (!negative) predicate.positions = times;
  }
  for (let index = 0; index < input.length; index++) {
    const n = times.get(index);
    if (n !== undefined) for (let k = 0; k < n; k++) results.push(input[index]);
  }
  return results;
}

// ---- object constructors and group-by -------------------------------------------------------

type Group = (input: V, env: Frame) => V;

/**
 * jsonata evaluates the items of an array constructor and the values of an object constructor
 * concurrently (`Promise.all`), interleaved at every await; the compiler evaluates them in
 * order. The results are the same unless an item binds a variable that another item reads,
 * so an item that binds into the enclosing frame (a `:=` outside any block or lambda of its
 * own) is left to jsonata.
 */
function checkNoBinding(node: V): void {
  if (!node || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const n of node) checkNoBinding(n);
    return;
  }
  if (node.type === 'block' || node.type === 'lambda') return;
  if (node.type === 'bind') throw new Unsupported('a variable bound inside an array or object constructor');
  for (const key of Object.keys(node)) if (key !== 'position') checkNoBinding(node[key]);
}

function compileGroup(group: { lhs: [V, V][]; position?: number }): Group {
  checkNoBinding(group.lhs);
  const pairs = group.lhs.map(([k, v]) => [compile(k), compile(v)] as const);
  const position = group.position;

  // Literal keys, all different and none reserved: one context gives one object, key by key.
  const literal = group.lhs.every(([k]) => k.type === 'string');
  const names = group.lhs.map(([k]) => k.value as string);
  const distinct = new Set(names).size === names.length;
  const reserved = names.some((n) => n === '_jsonata_lambda' || n === '_jsonata_function');
  let fast: ((item: V, env: Frame) => V) | undefined;
  if (literal && distinct && !reserved) {
    // Values are evaluated in the order of the keys of an object (integer-like keys first), as jsonata does.
    const order = Object.keys(Object.fromEntries(names.map((n, i) => [n, i]))).map((n) => names.indexOf(n));
    const keyed = order.map((i) => [names[i]!, pairs[i]![1]] as const);
    const hasProto = names.includes('__proto__');
    fast = (item, env) => {
      const result: V = {};
      for (const [key, value] of keyed) {
        const v = value(item, env);
        if (v !== undefined) {
          if (hasProto) setProp(result, key, v);
          else result[key] = v;
        }
      }
      return result;
    };
  }

  return (input, env) => {
    const reduce = !!input?.tupleStream;
    if (fast && !Array.isArray(input)) return fast(input, env);
    const groups: V = Object.create(null);
    if (!Array.isArray(input)) input = seq1(input);
    if (input.length === 0 && !reduce) input.push(undefined);
    for (let itemIndex = 0; itemIndex < input.length; itemIndex++) {
      const item = input[itemIndex];
      const frame = reduce ? frameFromTuple(env, item) : env;
      for (let pairIndex = 0; pairIndex < pairs.length; pairIndex++) {
        const key = pairs[pairIndex]![0](reduce ? item['@'] : item, frame);
        if (typeof key !== 'string' && key !== undefined) {
          throw { code: 'T1003', stack: new Error().stack, position, value: key };
        }
        if (key !== undefined) {
          if (key === '_jsonata_lambda' || key === '_jsonata_function') {
            throw { code: 'D1013', stack: new Error().stack, position, value: key };
          }
          if (Object.hasOwn(groups, key)) {
            if (groups[key].exprIndex !== pairIndex) {
              throw { code: 'D1009', stack: new Error().stack, position, value: key };
            }
            groups[key].data = append(groups[key].data, item);
          } else groups[key] = { data: item, exprIndex: pairIndex };
        }
      }
    }
    const result: V = {};
    for (const key of Object.keys(groups)) {
      const entry = groups[key];
      let context = entry.data;
      let frame = env;
      if (reduce) {
        const tuple = reduceTupleStream(entry.data);
        context = tuple['@'];
        delete tuple['@'];
        frame = frameFromTuple(env, tuple);
      }
      const value = pairs[entry.exprIndex]![1](context, frame);
      if (value !== undefined) setProp(result, key, value);
    }
    return result;
  };
}

function reduceTupleStream(tupleStream: V): V {
  if (!Array.isArray(tupleStream)) return tupleStream;
  const result = Object.create(null);
  Object.assign(result, tupleStream[0]);
  for (let ii = 1; ii < tupleStream.length; ii++) {
    for (const prop of Object.keys(tupleStream[ii]))
      result[prop] = append(result[prop], tupleStream[ii][prop]);
  }
  return result;
}

// ---- operators -------------------------------------------------------------------------------

function compileUnary(node: V): Ev {
  switch (node.value) {
    case '-': {
      const expression = compile(node.expression);
      return (input, env) => {
        const result = expression(input, env);
        if (result === undefined) return undefined;
        if (isNumeric(result)) return -result;
        throw {
          code: 'D1002',
          stack: new Error().stack,
          position: node.position,
          token: node.value,
          value: result,
        };
      };
    }
    case '[': {
      checkNoBinding(node.expressions);
      const items = (node.expressions as V[]).map((item) => ({
        ev: compile(item),
        nested: item.value === '[',
      }));
      const consarray = node.consarray === true;
      return (input, env) => {
        const result: V[] = [];
        for (const item of items) {
          const value = item.ev(input, env);
          if (value !== undefined) {
            // a nested array constructor is one item; anything else is appended (an array spread)
            if (item.nested || !Array.isArray(value)) result.push(value);
            else for (let i = 0; i < value.length; i++) result.push(value[i]);
          }
        }
        if (consarray)
          Object.defineProperty(result, 'cons', { enumerable: false, configurable: false, value: true });
        return result;
      };
    }
    case '{':
      return compileGroup({ lhs: node.lhs, position: node.position });
    default:
      throw new Unsupported(`the unary operator ${node.value}`);
  }
}

function compileBinary(node: V): Ev {
  const op = node.value as string;
  const lhs = compile(node.lhs);
  const rhs = compile(node.rhs);
  const fail = (err: V) => {
    err.position = node.position;
    err.token = op;
    return err;
  };
  const boolize = (value: V) => toBool(value) ?? false;
  switch (op) {
    case 'and':
      return (input, env) => {
        const l = lhs(input, env);
        try {
          return boolize(l) && boolize(rhs(input, env));
        } catch (err) {
          throw fail(err);
        }
      };
    case 'or':
      return (input, env) => {
        const l = lhs(input, env);
        try {
          return boolize(l) || boolize(rhs(input, env));
        } catch (err) {
          throw fail(err);
        }
      };
  }
  let operate: (l: V, r: V) => V;
  switch (op) {
    case '+':
    case '-':
    case '*':
    case '/':
    case '%':
      operate = (l, r) => numeric(l, r, op);
      break;
    case '=':
      operate = (l, r) => (l === undefined || r === undefined ? false : isDeepEqual(l, r));
      break;
    case '!=':
      operate = (l, r) => (l === undefined || r === undefined ? false : !isDeepEqual(l, r));
      break;
    case '<':
    case '<=':
    case '>':
    case '>=':
      operate = (l, r) => comparison(l, r, op);
      break;
    case '&':
      operate = (l, r) => (l === undefined ? '' : toStr(l)).concat(r === undefined ? '' : toStr(r));
      break;
    case '..':
      operate = range;
      break;
    case 'in':
      operate = (l, r) => {
        if (l === undefined || r === undefined) return false;
        if (!Array.isArray(r)) return r === l;
        for (let i = 0; i < r.length; i++) if (r[i] === l) return true;
        return false;
      };
      break;
    default:
      throw new Unsupported(`the operator ${op}`);
  }
  return (input, env) => {
    const l = lhs(input, env);
    const r = rhs(input, env);
    try {
      return operate(l, r);
    } catch (err) {
      throw fail(err);
    }
  };
}

function numeric(lhs: V, rhs: V, op: string): V {
  if (lhs !== undefined && !isNumeric(lhs)) throw { code: 'T2001', stack: new Error().stack, value: lhs };
  if (rhs !== undefined && !isNumeric(rhs)) throw { code: 'T2002', stack: new Error().stack, value: rhs };
  if (lhs === undefined || rhs === undefined) return undefined;
  switch (op) {
    case '+':
      return lhs + rhs;
    case '-':
      return lhs - rhs;
    case '*':
      return lhs * rhs;
    case '/':
      return lhs / rhs;
    default:
      return lhs % rhs;
  }
}

function comparison(lhs: V, rhs: V, op: string): V {
  const ltype = typeof lhs;
  const rtype = typeof rhs;
  const lcomparable = ltype === 'undefined' || ltype === 'string' || ltype === 'number';
  const rcomparable = rtype === 'undefined' || rtype === 'string' || rtype === 'number';
  if (!lcomparable || !rcomparable) {
    throw {
      code: 'T2010',
      stack: new Error().stack,
      value: !(ltype === 'string' || ltype === 'number') ? lhs : rhs,
    };
  }
  if (ltype === 'undefined' || rtype === 'undefined') return undefined;
  if (ltype !== rtype) throw { code: 'T2009', stack: new Error().stack, value: lhs, value2: rhs };
  switch (op) {
    case '<':
      return lhs < rhs;
    case '<=':
      return lhs <= rhs;
    case '>':
      return lhs > rhs;
    default:
      return lhs >= rhs;
  }
}

function range(lhs: V, rhs: V): V {
  if (lhs !== undefined && !Number.isInteger(lhs))
    throw { code: 'T2003', stack: new Error().stack, value: lhs };
  if (rhs !== undefined && !Number.isInteger(rhs))
    throw { code: 'T2004', stack: new Error().stack, value: rhs };
  if (lhs === undefined || rhs === undefined) return undefined;
  if (lhs > rhs) return undefined;
  const size = rhs - lhs + 1;
  if (size > 1e7) throw { code: 'D2014', stack: new Error().stack, value: size };
  const result: V = new Array(size);
  for (let item = lhs, index = 0; item <= rhs; item++, index++) result[index] = item;
  result.sequence = true;
  return result;
}

function evaluateWildcard(input: V): V {
  let results = seq();
  if (Array.isArray(input) && (input as V).outerWrapper && input.length > 0) input = input[0];
  if (input !== null && typeof input === 'object' && !isFunction(input)) {
    for (const key of Object.keys(input)) {
      const value = input[key];
      if (Array.isArray(value)) results = append(results, flatten(value, []));
      else results.push(value);
    }
  }
  return results;
}

function flatten(arg: V, flattened: V[]): V[] {
  if (Array.isArray(arg)) for (const item of arg) flatten(item, flattened);
  else flattened.push(arg);
  return flattened;
}

/** A regex literal as jsonata gives it: a matcher function (string, from) → {match, start, end, groups, next}. */
function regexClosure(regex: RegExp, position: number): V {
  const re = new RegExp(regex);
  const closure = (str: V, fromIndex?: number): V => {
    let result: V;
    re.lastIndex = fromIndex || 0;
    const m = re.exec(str);
    if (m !== null) {
      result = { match: m[0], start: m.index, end: m.index + m[0].length, groups: [] as V[] };
      for (let i = 1; i < m.length; i++) result.groups.push(m[i]);
      result.next = () => {
        if (re.lastIndex >= str.length) return undefined;
        const next = closure(str, re.lastIndex);
        if (next && next.match === '') {
          throw { code: 'D1004', stack: new Error().stack, position, value: regex.source };
        }
        return next;
      };
    }
    return result;
  };
  return closure;
}

// ---- functions -------------------------------------------------------------------------------

function compileLambda(node: V): Ev {
  if (node.thunk) {
    // A function call in tail position: jsonata returns it as a thunk that `apply` runs.
    const call = node.body;
    const tail: TailCall = {
      procedure: compile(call.procedure),
      procedureNode: call.procedure,
      args: (call.arguments as V[]).map(compile),
    };
    return (input, env) => {
      const thunk = makeLambda(input, env, [], () => undefined);
      thunk.thunk = true;
      thunk.call = tail;
      return thunk;
    };
  }
  if (node.signature !== undefined) throw new Unsupported('a lambda with a signature');
  const params = node.arguments as { value: string }[];
  const body = compile(node.body);
  return (input, env) => makeLambda(input, env, params, body);
}

/** Function arguments that are functions are passed wrapped, as jsonata's evaluateFunction does. */
function wrapArg(arg: V): V {
  if (!isFunction(arg)) return arg;
  const closure: V = function (this: V, ...params: V[]) {
    return apply(arg, params, null);
  };
  closure.arity = getFunctionArity(arg);
  return closure;
}

function compileCall(node: V, applyTo?: Ev): Ev {
  const procedure = compile(node.procedure);
  const args = (node.arguments as V[]).map(compile);
  const procNode = node.procedure;
  const procName = procNode.type === 'path' ? procNode.steps[0].value : procNode.value;
  const position = node.position;
  if (applyTo) {
    // `lhs ~> $f(args)`: the left side first, then the function, then its arguments
    return (input, env) => {
      const context = applyTo(input, env);
      return call(procedure(input, env), [context], input, env);
    };
  }
  return (input, env) => call(procedure(input, env), [], input, env);

  function call(proc: V, evaluatedArgs: V[], input: V, env: Frame): V {
    if (proc === undefined && procNode.type === 'path' && env.lookup(procNode.steps[0].value)) {
      throw { code: 'T1005', stack: new Error().stack, position, token: procNode.steps[0].value };
    }
    for (const arg of args) evaluatedArgs.push(wrapArg(arg(input, env)));
    try {
      if (typeof proc === 'object') {
        proc.token = procName;
        proc.position = position;
      }
      return apply(proc, evaluatedArgs, input);
    } catch (err) {
      const e = err as V;
      if (!e.position) e.position = position;
      if (!e.token) e.token = procName;
      throw err;
    }
  }
}

let chainCompiled: Ev | undefined;

function compileApply(node: V): Ev {
  const lhs = compile(node.lhs);
  if (node.rhs.type === 'function') return compileCall(node.rhs, lhs);
  const rhs = compile(node.rhs);
  return (input, env) => {
    const l = lhs(input, env);
    const func = rhs(input, env);
    if (!isFunction(func))
      throw { code: 'T2006', stack: new Error().stack, position: node.position, value: func };
    if (isFunction(l)) {
      // function chaining: λ($f, $g) { λ($x){ $g($f($x)) } }
      chainCompiled ??= compileExpression(jsonata('function($f, $g) { function($x){ $g($f($x)) } }').ast());
      return apply(chainCompiled(null, env), [l, func], null);
    }
    return apply(func, [l], null);
  };
}

// ---------------------------------------------------------------------------------------------

/**
 * Compile a JSONata expression (a mapping file's text). Syntax errors throw as jsonata's do
 * (with `position`). A mapping the compiler does not cover runs on jsonata's evaluator instead.
 */
export function compileMapping(source: string): CompiledMapping {
  const expression = jsonata(source);
  const interpret = (input: unknown, bindings?: Record<string, unknown>) =>
    expression.evaluate(input, bindings);
  const fallback = (reason: string): CompiledMapping => ({
    compiled: false,
    reason,
    expression,
    evaluate: interpret,
    run: interpret,
  });
  if (nativesProblem) return fallback(nativesProblem);
  let ev: Ev;
  try {
    ev = compileExpression(expression.ast());
  } catch (err) {
    // Anything the compiler cannot handle leaves the mapping to jsonata, never unusable.
    return fallback(err instanceof Unsupported ? `not compiled: ${err.message}` : `compiler error: ${err}`);
  }
  const evaluate = (input: unknown, bindings?: Record<string, unknown>): unknown => {
    const root = new Frame(null);
    if (bindings) for (const name of Object.keys(bindings)) root.bind(name, bindings[name]);
    root.bind('$', input);
    let context: V = input;
    if (Array.isArray(input) && !isSequence(input)) {
      context = seq1(input);
      context.outerWrapper = true;
    }
    const outer = evaluationTime;
    evaluationTime = undefined;
    try {
      return ev(context, root);
    } catch (err) {
      if (err && typeof err === 'object') populateMessage(err);
      throw err;
    } finally {
      evaluationTime = outer;
    }
  };
  return {
    compiled: true,
    expression,
    evaluate,
    run(input, bindings) {
      try {
        return evaluate(input, bindings);
      } catch {
        // Re-evaluated on the input as it is: the only change a failed evaluation can have
        // made to it is jsonata's own (flags on arrays), which jsonata makes as well.
        return interpret(input, bindings);
      }
    },
  };
}
