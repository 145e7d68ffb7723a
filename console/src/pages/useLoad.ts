import { useCallback, useEffect, useState } from 'preact/hooks';
import { describe } from '../api';

/** Loads with `load`, again on `reload()`; the error as the API stated it. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[] = []) {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState('');
  const reload = useCallback(() => {
    load()
      .then((d) => {
        setData(d);
        setError('');
      })
      .catch((e) => setError(describe(e)));
  }, deps);
  useEffect(reload, [reload]);
  return { data, error, reload };
}
