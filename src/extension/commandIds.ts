/**
 * Every command Lifeboat contributes: its id, its exact title (category "Lifeboat") and
 * whether the Command Palette shows it. package.json's `contributes.commands` must list
 * the same ids and titles (a test in test/unit checks that); `registerCommands` links each
 * id to its handler through `CommandHandlers`, so an id without a handler is a type error.
 */
export const COMMANDS = {
  backupNow: { id: 'lifeboat.backupNow', title: 'Back Up Now', palette: true },
  restoreBackup: { id: 'lifeboat.restoreBackup', title: 'Restore Backup...', palette: true },
  verifyBackup: { id: 'lifeboat.verifyBackup', title: 'Verify Backup', palette: true },
  openBackup: { id: 'lifeboat.openBackup', title: 'Open Backup', palette: true },
  compareWithCurrent: { id: 'lifeboat.compareWithCurrent', title: 'Compare with Current Database', palette: true },
  compareBackups: { id: 'lifeboat.compareBackups', title: 'Compare Two Backups', palette: true },
  verifyAll: { id: 'lifeboat.verifyAll', title: 'Verify All Backups', palette: true },
  saveBackupAs: { id: 'lifeboat.saveBackupAs', title: 'Save Backup As...', palette: true },
  deleteBackup: { id: 'lifeboat.deleteBackup', title: 'Delete Backup', palette: false },
  pinBackup: { id: 'lifeboat.pinBackup', title: 'Pin Backup', palette: false },
  unpinBackup: { id: 'lifeboat.unpinBackup', title: 'Unpin Backup', palette: false },
  rotateNow: { id: 'lifeboat.rotateNow', title: 'Rotate Backups Now', palette: true },
  protectDatabase: { id: 'lifeboat.protectDatabase', title: 'Protect Database...', palette: true },
  openPanel: { id: 'lifeboat.openPanel', title: 'Open Settings and Statistics', palette: true },
  showLog: { id: 'lifeboat.showLog', title: 'Show Backup Log', palette: true },
  revealBackup: { id: 'lifeboat.revealBackup', title: 'Reveal Backup in File Explorer', palette: false },
  addBackupStep: { id: 'lifeboat.addBackupStep', title: 'Add Backup Step to Migration Task...', palette: true },
  refresh: { id: 'lifeboat.refresh', title: 'Refresh', palette: false },
  setOffsiteCredentials: { id: 'lifeboat.setOffsiteCredentials', title: 'Set Off-site Credentials...', palette: true },
  copyOffsiteNow: { id: 'lifeboat.copyOffsiteNow', title: 'Copy Off-site Now', palette: true },
  verifyOffsite: { id: 'lifeboat.verifyOffsite', title: 'Verify Off-site Copies', palette: true },
  restoreFromOffsite: { id: 'lifeboat.restoreFromOffsite', title: 'Restore from Off-site...', palette: true },
} as const;

export type CommandKey = keyof typeof COMMANDS;
export type CommandId = (typeof COMMANDS)[CommandKey]['id'];

/** One handler per command key; arguments are whatever VS Code passes (a tree node, a Uri, nothing). */
export type CommandHandlers = { [K in CommandKey]: (...args: unknown[]) => unknown };

/** The category every command shows under. */
export const COMMAND_CATEGORY = 'Lifeboat';
