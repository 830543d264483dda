/**
 * The queued-invalidation + interrupt-remapping extension of the VT-d core
 * (hooks.ts): wires InvalidationQueue, InterruptRemapper and, with `x-pi`,
 * PostedInterrupts to the core's hooks.  Importing this module registers the
 * extension for every IntelIommu created afterwards without an explicit list.
 *
 * Its properties (beyond QEMU; listed in props.ts):
 *   x-pi                  posted interrupts (CAP.PI, IRTE IM=1)
 *   x-cfi                 GSTS.CFIS follows GCMD.CFI; compatibility-format interrupts blocked without it
 *   x-iqer                the invalidation queue error record register (0xB0)
 *   x-devtlb-timeout-sid  device-TLB invalidations for this SID time out (FSTS.ITE)
 *   x-devtlb-error-sid    device-TLB invalidations for this SID complete in error (FSTS.ICE)
 */
import { postedInterrupts } from './caps.js';
import { registerIommuExtension, type IommuCore, type IommuExtension, type IommuHooks } from './hooks.js';
import { InterruptRemapper } from './interrupt-remap.js';
import { PostedInterrupts } from './posted-interrupts.js';
import { InvalidationQueue, queueOptionsFrom } from './queue.js';

/** Name of the extension (IntelIommu.extension(name)). */
export const QI_IR_EXTENSION_NAME = 'qi-ir';

/** The hooks object, with the engines reachable for tests and tooling. */
export interface QiIrHooks extends IommuHooks {
  readonly queue: InvalidationQueue;
  readonly remapper: InterruptRemapper;
}

/** The extension factory. */
export const qiIrExtension: IommuExtension = (core: IommuCore): QiIrHooks => {
  const posted = postedInterrupts(core.config) ? new PostedInterrupts(core.memory, core.msi, core.tracer) : null;
  const remapper = new InterruptRemapper(core, posted, core.config.raw['x-cfi'] === true);
  const queue = new InvalidationQueue(
    core,
    { invalidateIec: (global, index, mask) => remapper.invalidateIec(global, index, mask) },
    queueOptionsFrom(core.config.raw),
  );
  return {
    name: QI_IR_EXTENSION_NAME,
    queue,
    remapper,
    reset: () => {
      queue.reset();
      remapper.reset();
    },
    onQieChange: (enable) => queue.onQieChange(enable),
    onIqtWrite: () => queue.onIqtWrite(),
    readOverride: (off) => queue.readOverride(off),
    onIcsWrite: () => queue.onIcsWrite(),
    onIectlWrite: () => queue.onIectlWrite(),
    onFstsWrite: () => queue.onFstsWrite(),
    onSirtp: () => remapper.onSirtp(),
    onIreChange: () => remapper.onIreChange(),
    onCfiChange: (on) => remapper.onCfiChange(on),
    interruptWrite: (addr, data, sid) => remapper.interruptWrite(addr, data, sid),
  };
};

registerIommuExtension(qiIrExtension);
