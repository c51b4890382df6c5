/** `useNetworkMode()`: the device's network mode as reactive state, for the chat's header. */
import { onScopeDispose, reactive } from 'vue';
import { NetworkMode } from './network-mode.js';

/** Reactive view of `NetworkMode`; setting `workOffline` flips the device's switch. */
export interface NetworkModeState {
  workOffline: boolean;
  readonly browserOnline: boolean;
  /** Sync may use the network. */
  readonly online: boolean;
}

/** Follows the network mode until the component unmounts; `onChange` hears every change. */
export function useNetworkMode(onChange: (online: boolean) => void = () => {}): NetworkModeState {
  const mode = new NetworkMode();
  const state = reactive({ workOffline: mode.workOffline, browserOnline: mode.browserOnline, online: mode.online });
  const unsubscribe = mode.subscribe((online) => {
    state.workOffline = mode.workOffline;
    state.browserOnline = mode.browserOnline;
    state.online = online;
    onChange(online);
  });
  onScopeDispose(() => {
    unsubscribe();
    mode.dispose();
  });
  return {
    get workOffline() {
      return state.workOffline;
    },
    set workOffline(value: boolean) {
      mode.workOffline = value;
    },
    get browserOnline() {
      return state.browserOnline;
    },
    get online() {
      return state.online;
    },
  };
}
