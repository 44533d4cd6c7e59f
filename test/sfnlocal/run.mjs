// run.mjs — runs an ASL definition with aws-local-stepfunctions, every Task
// state (also inside Parallel and Map) routed to a Go handler server over
// HTTP, and prints the execution's events as JSON lines on stdout.
//
// usage: node run.mjs --definition FILE --input FILE [--url URL] [--wait-scale F]
//   --url         handler server base URL (default: $SFNLOCAL_URL)
//   --wait-scale  factor applied to Wait durations and Retry intervals (default 1)
//
// The request for a Task is POST <url>/invoke with the task's input as the
// body (the Lambda payload, unchanged), the Lambda ARN in the header
// X-Sfnlocal-Function and the state name in X-Sfnlocal-State. The server
// answers like the Lambda Invoke API: the function's result as the body, or,
// with the header X-Amz-Function-Error, {"errorType", "errorMessage"}. An
// error is thrown with `name` = errorType, so Retry and Catch match it as
// Step Functions does, and `message` = the error JSON, which Step Functions
// puts in the error's Cause.
//
// Each stdout line is one JSON object with a "type"; the last one is
// {"type":"Result", "status":"SUCCEEDED"|"FAILED"|"TIMED_OUT"|"ABORTED", ...}.
// Exit status: 0 when the execution ran (whatever its outcome), 2 when it
// could not be run (bad arguments, invalid definition, engine missing).

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

// aws-local-stepfunctions 3.0.0 uses Promise.withResolvers (Node >= 22) in
// every Task state. Polyfill it before the engine is imported, which is why
// the engine is loaded with a dynamic import below, not a static one.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new this((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function die(message) {
  emit({ type: 'Result', status: 'ERROR', error: 'sfnlocal', cause: message, time: new Date().toISOString() });
  process.stderr.write(`sfnlocal: ${message}\n`);
  process.exit(2);
}

const { values: args } = parseArgs({
  options: {
    definition: { type: 'string' },
    input: { type: 'string' },
    url: { type: 'string' },
    'wait-scale': { type: 'string' },
  },
});
if (!args.definition || !args.input) die('--definition and --input are required');
const url = (args.url || process.env.SFNLOCAL_URL || '').replace(/\/+$/, '');
if (!url) die('--url or SFNLOCAL_URL is required');
const waitScale = args['wait-scale'] === undefined ? 1 : Number(args['wait-scale']);
if (!Number.isFinite(waitScale) || waitScale < 0) die(`--wait-scale must be a number >= 0, got ${args['wait-scale']}`);

let definition;
let input;
try {
  definition = JSON.parse(readFileSync(args.definition, 'utf8'));
  input = JSON.parse(readFileSync(args.input, 'utf8'));
} catch (e) {
  die(`reading definition/input: ${e.message}`);
}

// Scale the engine's sleeps. Wait states and Retry intervals both go through
// the engine's internal sleep(ms) → setTimeout; overriding them through the
// engine's own options would replace SecondsPath, BackoffRate and jitter by
// constants. Instead only setTimeout calls made from that sleep are scaled,
// so the engine still evaluates SecondsPath (an integer >= 0, as AWS
// requires), backoff and FULL jitter. Task timeouts are not scaled.
const engineSleepFrame = /at sleep \(.*aws-local-stepfunctions/;
let scaledSleeps = 0;
if (waitScale !== 1) {
  const realSetTimeout = globalThis.setTimeout;
  globalThis.setTimeout = function scaledSetTimeout(fn, ms, ...rest) {
    if (typeof ms === 'number' && ms > 0) {
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 4;
      const stack = new Error().stack || '';
      Error.stackTraceLimit = limit;
      if (engineSleepFrame.test(stack)) {
        scaledSleeps++;
        ms = ms * waitScale;
      }
    }
    return realSetTimeout.call(this, fn, ms, ...rest);
  };
}

let engine;
try {
  engine = await import('aws-local-stepfunctions');
} catch (e) {
  die(`cannot load aws-local-stepfunctions (run \`npm ci\` at the repository root): ${e.message}`);
}

// Every Task state, at any depth (Parallel branches, Map iterators).
function taskStates(states, out = []) {
  for (const [name, st] of Object.entries(states || {})) {
    if (st.Type === 'Task') out.push([name, st]);
    for (const b of st.Branches || []) taskStates(b.States, out);
    if (st.Iterator) taskStates(st.Iterator.States, out);
    if (st.ItemProcessor) taskStates(st.ItemProcessor.States, out);
  }
  return out;
}

class TaskError extends Error {
  constructor(name, message) {
    super(message);
    this.name = name;
  }
}

const lambdaInvoke = /^arn:aws[a-z-]*:states:::lambda:invoke$/;

function handlerFor(stateName, resource) {
  return async (taskInput) => {
    // Direct Lambda ARN: the payload is the task input, the result the
    // function's output. The lambda:invoke integration: the payload is
    // Parameters.Payload and the result is wrapped like the Invoke API's.
    let fn = resource;
    let payload = taskInput;
    const viaInvoke = lambdaInvoke.test(resource);
    if (viaInvoke) {
      fn = taskInput?.FunctionName;
      payload = taskInput?.Payload ?? null;
    }
    let res;
    try {
      res = await fetch(`${url}/invoke`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-sfnlocal-function': String(fn),
          'x-sfnlocal-state': stateName,
        },
        body: JSON.stringify(payload),
      });
    } catch (e) {
      // Lambda unreachable: what Step Functions reports for a service fault.
      throw new TaskError('Lambda.ServiceException', `sfnlocal: POST ${url}/invoke: ${e.message}`);
    }
    const text = await res.text();
    if (res.status !== 200) {
      throw new TaskError('Lambda.ServiceException', `sfnlocal: handler server answered ${res.status}: ${text}`);
    }
    let body;
    try {
      body = JSON.parse(text);
    } catch (e) {
      throw new TaskError('Lambda.ServiceException', `sfnlocal: handler result is not JSON: ${text.slice(0, 200)}`);
    }
    if (res.headers.get('x-amz-function-error')) {
      throw new TaskError(String(body?.errorType ?? 'Unknown'), text.trim());
    }
    if (viaInvoke) return { ExecutedVersion: '$LATEST', Payload: body, StatusCode: 200 };
    return body;
  };
}

const taskResourceLocalHandlers = {};
for (const [name, st] of taskStates(definition.States)) {
  if (taskResourceLocalHandlers[name]) die(`two Task states are named ${name}: overrides are per name`);
  taskResourceLocalHandlers[name] = handlerFor(name, st.Resource);
}

let machine;
try {
  machine = new engine.StateMachine(definition, { validationOptions: { checkPaths: true, checkArn: true } });
} catch (e) {
  die(`invalid definition: ${e.message}`);
}

const iso = (ms) => new Date(ms).toISOString();

function eventLine(ev) {
  const out = { type: ev.type, time: iso(ev.timestamp) };
  if (ev.state) {
    out.state = ev.state.name;
    out.stateType = ev.state.type;
    if (ev.type === 'StateEntered') out.input = ev.state.input;
    if (ev.type === 'StateExited') out.output = ev.state.output;
  }
  if (ev.parentState) out.parent = ev.parentState.name;
  if (ev.index !== undefined) out.index = ev.index;
  if (ev.Error !== undefined) out.error = ev.Error;
  if (ev.Cause !== undefined) out.cause = typeof ev.Cause === 'string' ? ev.Cause : JSON.stringify(ev.Cause);
  if (ev.retry) {
    out.attempt = ev.retry.attempt;
    out.errorEquals = ev.retry.retrier.ErrorEquals;
  }
  if (ev.catch) {
    out.errorEquals = ev.catch.catcher.ErrorEquals;
    out.next = ev.catch.catcher.Next;
    out.resultPath = ev.catch.catcher.ResultPath;
  }
  if (ev.type === 'ExecutionStarted') out.input = ev.input;
  if (ev.type === 'ExecutionSucceeded') out.output = ev.output;
  return out;
}

// The Context Object as Step Functions fills it (the engine leaves
// Execution.Id empty): the definition reads $$.Execution.Id.
const executionName = `local-${Date.now()}-${process.pid}`;
const context = {
  Execution: {
    Id: `arn:aws:states:us-east-1:000000000000:execution:seedrepl-migration:${executionName}`,
    Name: executionName,
    Input: input,
    StartTime: new Date().toISOString(),
    RoleArn: 'arn:aws:iam::000000000000:role/seedrepl-migration',
  },
  StateMachine: {
    Id: 'arn:aws:states:us-east-1:000000000000:stateMachine:seedrepl-migration',
    Name: 'seedrepl-migration',
  },
};
const execution = machine.run(input, { overrides: { taskResourceLocalHandlers }, context });
let failed = null;
try {
  for await (const ev of execution.eventLogs) {
    emit(eventLine(ev));
    if (ev.type === 'ExecutionFailed') failed = { error: ev.Error, cause: ev.Cause };
  }
} catch (e) {
  // The generator ends by rethrowing on some engine errors; the result below tells.
}

const final = { type: 'Result', time: new Date().toISOString(), scaledSleeps };
try {
  final.output = await execution.result;
  final.status = 'SUCCEEDED';
} catch (e) {
  if (e instanceof engine.ExecutionTimeoutError) final.status = 'TIMED_OUT';
  else if (e instanceof engine.ExecutionAbortedError) final.status = 'ABORTED';
  else final.status = 'FAILED';
  final.error = failed?.error ?? e.cause?.name ?? e.name;
  const cause = failed?.cause ?? e.cause?.message ?? e.message;
  final.cause = typeof cause === 'string' ? cause : JSON.stringify(cause);
}
emit(final);
