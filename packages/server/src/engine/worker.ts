import { parentPort, workerData } from 'node:worker_threads';
import { loadBundle } from './bundle.js';
import { serializeError } from './errors.js';
import { MagmaModel } from './magma-model.js';
import { checkMemoryBudget, memoryReport } from './memory.js';
import { openModel } from './model-sessions.js';
import type { ModelSessions } from './model-sessions.js';
import { PrefixCache } from './prefix-cache.js';
import { PromptTokenizer } from './prompt.js';
import type { FromWorker, ToWorker, WorkerOptions } from './protocol.js';
import { Scheduler, schedulerSettings } from './scheduler.js';

// The engine worker: owns every onnxruntime session, so session creation and runs (which block
// their thread) never stall the server's event loop.

const port = parentPort;
if (port === null) throw new Error('engine worker must run in a worker thread');

function send(message: FromWorker): void {
  port!.postMessage(message);
}

async function start(options: WorkerOptions): Promise<void> {
  let sessions: ModelSessions | undefined;
  let scheduler: Scheduler;
  const provider = options.executionProvider ?? 'cpu';
  try {
    const bundle = loadBundle(options.modelDir, {
      dtype: options.dtype ?? 'auto',
      executionProvider: provider,
    });
    const prompt = new PromptTokenizer(bundle.tokenizer, bundle.config.imageTokenId);
    const batch = schedulerSettings(options).maxBatchSize;
    // Before any session is opened: a budget the worst case cannot fit in fails here, not under load.
    checkMemoryBudget(memoryReport(bundle, batch), options.memoryBudgetBytes ?? 0);
    sessions = await openModel(bundle, options);
    const model = new MagmaModel(sessions, bundle.config);
    scheduler = new Scheduler(
      model,
      prompt,
      schedulerSettings(options),
      {
        token: (id, text) => send({ type: 'token', id, text }),
        result: (id, result) => send({ type: 'result', id, result }),
        error: (id, error) => send({ type: 'error', id, error: serializeError(error) }),
        prefixMiss: (id) => send({ type: 'prefix-miss', id }),
        prefixCache: (change) => send({ type: 'prefix-cache', change }),
      },
      new PrefixCache(options.prefixCacheBytes ?? 0),
    );
    const { config } = bundle;
    send({
      type: 'ready',
      info: {
        name: config.name,
        revision: config.revision,
        executionProvider: provider,
        dtype: bundle.dtype,
        cropSize: config.cropSize,
        maxCrops: config.maxCrops,
        markMinimums: config.markMinimums,
        imageMean: config.imageMean,
        imageStd: config.imageStd,
        vocabSize: config.vocabSize,
        maxPositionEmbeddings: config.maxPositionEmbeddings,
        // The KV element size as the opened decoder declares it.
        memory: memoryReport(bundle, batch, sessions.kvType === 'float16' ? 2 : 4),
      },
    });
  } catch (error) {
    await sessions?.release();
    send({ type: 'startup-error', error: serializeError(error, 'INVALID_BUNDLE') });
    port!.close();
    return;
  }

  port!.on('message', (message: ToWorker) => {
    switch (message.type) {
      case 'generate':
        scheduler.submit(message.request);
        break;
      case 'cancel':
        scheduler.cancel(message.id);
        break;
      case 'crash':
        setImmediate(() => {
          throw new Error('crash requested by the engine (test hook)');
        });
        break;
      case 'close':
        scheduler.cancelAll();
        void scheduler
          .idle()
          .then(() => sessions!.release())
          .finally(() => {
            send({ type: 'closed' });
            port!.close();
          });
        break;
    }
  });
}

void start(workerData as WorkerOptions);
