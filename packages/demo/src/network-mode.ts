/**
 * Whether this device may use the network for sync: the user's "work offline"
 * switch (kept in `localStorage`, so every tab of the device and a reload see
 * it) and the browser's own online state. The engine is paused whenever
 * either says offline.
 */

const OFFLINE_KEY = 'or3-demo:work-offline';

export type NetworkListener = (online: boolean) => void;

/** True when sync may use the network now: the browser is online and the switch is off. */
export function syncMayUseNetwork(): boolean {
  return navigator.onLine && localStorage.getItem(OFFLINE_KEY) !== '1';
}

/** The device's network mode; call `dispose()` to stop listening. */
export class NetworkMode {
  private readonly listeners = new Set<NetworkListener>();
  constructor() {
    window.addEventListener('online', this.changed);
    window.addEventListener('offline', this.changed);
    window.addEventListener('storage', this.onStorage);
  }

  /** The user's switch. */
  get workOffline(): boolean {
    return localStorage.getItem(OFFLINE_KEY) === '1';
  }

  set workOffline(value: boolean) {
    if (value) localStorage.setItem(OFFLINE_KEY, '1');
    else localStorage.removeItem(OFFLINE_KEY);
    this.changed();
  }

  /** The browser's network state. */
  get browserOnline(): boolean {
    return navigator.onLine;
  }

  /** True when sync may use the network. */
  get online(): boolean {
    return syncMayUseNetwork();
  }

  /** Calls `listener` with every change (also of the switch in another tab); returns an unsubscribe. */
  subscribe(listener: NetworkListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  dispose(): void {
    window.removeEventListener('online', this.changed);
    window.removeEventListener('offline', this.changed);
    window.removeEventListener('storage', this.onStorage);
    this.listeners.clear();
  }

  private readonly onStorage = (event: StorageEvent) => {
    if (event.key === OFFLINE_KEY || event.key === null) this.changed();
  };

  private readonly changed = () => {
    const online = this.online;
    for (const listener of [...this.listeners]) listener(online);
  };
}
