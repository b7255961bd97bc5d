import { PageHeader } from "../components/ui";
import { useTitle } from "../hooks";
import { Link } from "../router";

export function NotFoundScreen() {
  useTitle("Not found");
  return (
    <>
      <PageHeader title="Nothing here" />
      <p>
        This address is not a page of SAM. <Link href="/">Go to your projects</Link>.
      </p>
    </>
  );
}
