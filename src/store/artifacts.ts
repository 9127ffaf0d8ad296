/** An artifact as both stores keep it: a row naming its owner, user, name and type. */

export interface StoredArtifact {
  id: string;
  ownerId: string;
  userId: string;
  name: string;
  mimeType: string;
  size: number;
  createdAt: string;
}

export interface ArtifactRow {
  id: string;
  owner_id: string;
  user_id: string;
  name: string;
  mime_type: string;
  size: number;
  created_at: number;
}

export function fromRow(r: ArtifactRow): StoredArtifact {
  return {
    id: r.id,
    ownerId: r.owner_id,
    userId: r.user_id,
    name: r.name,
    mimeType: r.mime_type,
    size: r.size,
    createdAt: new Date(r.created_at).toISOString(),
  };
}
