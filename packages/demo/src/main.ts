/** The demo's entry: the Vue app with the or3-sync plugin, which opens the workspace the URL names. */
import './styles.css';
import { createApp } from 'vue';
import { createSyncPlugin } from '@or3/sync-vue';
import App from './App.vue';
import { chatOpener } from './open-chat.js';

createApp(App).use(createSyncPlugin(chatOpener)).mount('#app');
